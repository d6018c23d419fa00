import type { ComponentChildren, Ref } from "preact";

/**
 * A named region that may scroll (a wide table on a tablet, the live table, a payload): focusable, so a keyboard can
 * reach and scroll what does not fit (WCAG 2.1.1; axe's scrollable-region-focusable).
 */
export function ScrollRegion(props: {
  label: string;
  class?: string;
  maxHeight?: number;
  children: ComponentChildren;
  onScroll?: (e: Event & { currentTarget: HTMLElement }) => void;
  boxRef?: Ref<HTMLElement>;
}) {
  return (
    <section
      ref={props.boxRef}
      class={props.class ?? "scroll"}
      aria-label={props.label}
      // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard (see above)
      tabIndex={0}
      style={props.maxHeight ? { maxHeight: `${props.maxHeight}px` } : undefined}
      onScroll={props.onScroll}
    >
      {props.children}
    </section>
  );
}
