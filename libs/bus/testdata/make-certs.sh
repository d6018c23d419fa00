#!/bin/sh
# Regenerates the throwaway PKI of libs/bus's TLS tests (valid 20 years): a CA, a nats-server certificate for
# localhost / 127.0.0.1, and a client certificate. Test data only: the keys are published here.
set -eu
cd "$(dirname "$0")"
days=7300
openssl req -x509 -newkey rsa:2048 -nodes -days $days -subj "/O=Meridian/CN=Meridian bus test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca-key.pem -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj "/O=Meridian/CN=localhost" -keyout server-key.pem -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $days -extfile server.ext -out server-cert.pem
openssl req -newkey rsa:2048 -nodes -subj "/O=Meridian/CN=omf-sender" -keyout client-key.pem -out client.csr
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $days -extfile client.ext -out client-cert.pem
rm -f server.csr client.csr server.ext client.ext ca.srl ca-key.pem
