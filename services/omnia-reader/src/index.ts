/** Placeholder while the package is built; replaced by its real exports. */
export const PACKAGE = "services/omnia-reader";
