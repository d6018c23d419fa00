/**
 * iotc-bridge: Meridian's devices in Azure IoT Central (DPS, IoT Hub MQTT through the official device SDK), behind
 * meridian.iotc.v1.IotcBridgeService: its starter and settings. The device client alone is
 * `@meridian/iotc-bridge/platform`.
 */
export { type IotcBridgeConfig, iotcBridgeConfig } from "./config.js";
export { type IotcBridge, type IotcBridgeOptions, startIotcBridge } from "./service.js";
