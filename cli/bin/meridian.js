#!/usr/bin/env node
// The installed command: runs the built CLI (`npm run build` in a checkout).
import { main } from "../dist/index.js";

process.exitCode = await main(process.argv);
