/** Placeholder while the package is built; replaced by its real exports. */
export const PACKAGE = "emulators/entra";
