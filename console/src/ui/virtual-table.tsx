import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ScrollRegion } from "./scroll-region.js";
import { visibleWindow } from "./window.js";

const ROW_HEIGHT = 28;

/**
 * A table whose body renders only the rows in view (fixed row height): the live telemetry table holds thousands of
 * rows. With `follow`, it stays scrolled to the newest row until the person scrolls up.
 */
export function VirtualTable<T>(props: {
  label: string;
  columns: string[];
  rows: readonly T[];
  row: (item: T, index: number) => ComponentChildren;
  height?: number;
  follow?: boolean;
}) {
  const { label, columns, rows, row, height = 420, follow = false } = props;
  const box = useRef<HTMLElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const atBottom = useRef(true);

  useLayoutEffect(() => {
    const el = box.current;
    if (follow && el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [rows.length, follow]);
  useEffect(() => {
    const el = box.current;
    if (el) setScrollTop(el.scrollTop);
  }, [rows.length]);

  const w = visibleWindow(rows.length, scrollTop, height, ROW_HEIGHT);
  const span = columns.length;
  return (
    <ScrollRegion
      boxRef={box}
      class="vtable"
      maxHeight={height}
      label={label}
      onScroll={(e) => {
        const el = e.currentTarget;
        atBottom.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
        setScrollTop(el.scrollTop);
      }}
    >
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {w.before > 0 && (
            <tr class="spacer" style={{ height: `${w.before}px` }}>
              <td colSpan={span} />
            </tr>
          )}
          {rows.slice(w.first, w.last).map((item, i) => row(item, w.first + i))}
          {w.after > 0 && (
            <tr class="spacer" style={{ height: `${w.after}px` }}>
              <td colSpan={span} />
            </tr>
          )}
        </tbody>
      </table>
    </ScrollRegion>
  );
}
