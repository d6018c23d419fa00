/**
 * The rows a fixed-row-height list shows: those in view plus `overscan` on each side, and the space above and below
 * them, so a list of 100 000 rows keeps ~50 in the DOM.
 */
export function visibleWindow(total: number, scrollTop: number, viewport: number, rowHeight: number, overscan = 10) {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return { first, last, before: first * rowHeight, after: Math.max(0, (total - last) * rowHeight) };
}
