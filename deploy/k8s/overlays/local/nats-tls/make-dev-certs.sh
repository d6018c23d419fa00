#!/bin/sh
# Makes the DEVELOPMENT certificates of NATS in the local overlay (namespace meridian), valid 10 years: a CA, and the
# certificate every NATS node serves to clients and to the other nodes. Published in this repository: they encrypt,
# but anyone can impersonate NATS with them. A real cluster creates the nats-tls Secret itself (deploy/k8s/README.md).
set -eu
cd "$(dirname "$0")"
ns=meridian
days=3650
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
  -subj "/O=Meridian/CN=Meridian NATS development CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.crt
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Meridian/CN=nats" -keyout tls.key -out tls.csr
# The Service's names (clients) and every node's headless name (the nodes, to each other).
cat > tls.ext <<EXT
subjectAltName=DNS:nats,DNS:nats.$ns,DNS:nats.$ns.svc,DNS:nats.$ns.svc.cluster.local,DNS:*.nats-headless,DNS:*.nats-headless.$ns,DNS:*.nats-headless.$ns.svc,DNS:*.nats-headless.$ns.svc.cluster.local
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
EXT
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -extfile tls.ext -out tls.crt
rm -f tls.csr tls.ext ca.srl ca.key
