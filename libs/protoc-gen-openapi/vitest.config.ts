import { meridianProject } from "../../vitest.shared.js";

export default meridianProject(import.meta.dirname);
