import { useEffect, useRef } from "preact/hooks";

export interface Series {
  name: string;
  /** [time in ms, value], oldest first. */
  points: Array<[number, number]>;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];

/**
 * A live line chart on a canvas (one draw per animation frame at most, however fast values come): time on x over the
 * last `windowMs`, each series scaled to the common min/max. The figure's text alternative names the last values.
 */
export function LineChart({ series, windowMs = 60_000, height = 220 }: { series: Series[]; windowMs?: number; height?: number }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    const frame = requestAnimationFrame(() => draw(el, series, windowMs, height));
    return () => cancelAnimationFrame(frame);
  }, [series, windowMs, height]);
  const summary = series.map((s) => `${s.name}: ${s.points.at(-1)?.[1] ?? "no value"}`).join(", ");
  return (
    <figure class="chart">
      <canvas
        ref={canvas}
        style={{ height: `${height}px` }}
        role="img"
        aria-label={`Live chart. ${summary || "No values yet"}`}
        data-testid="live-chart"
      />
      <figcaption>
        {series.map((s, i) => (
          <span key={s.name} class="legend">
            <span class="swatch" style={{ background: COLOURS[i % COLOURS.length] }} /> {s.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

function draw(el: HTMLCanvasElement, series: Series[], windowMs: number, height: number) {
  const width = el.clientWidth || 600;
  const ratio = window.devicePixelRatio || 1;
  el.width = width * ratio;
  el.height = height * ratio;
  const g = el.getContext("2d");
  if (!g) return;
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const now = Date.now();
  const all = series.flatMap((s) => s.points.map((p) => p[1]));
  if (all.length === 0) return;
  let min = Math.min(...all);
  let max = Math.max(...all);
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const style = getComputedStyle(el);
  g.strokeStyle = style.getPropertyValue("--grid").trim() || "#888";
  g.fillStyle = style.color;
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(40, 4);
  g.lineTo(40, height - 16);
  g.lineTo(width, height - 16);
  g.stroke();
  g.fillText(String(Number(max.toPrecision(4))), 2, 12);
  g.fillText(String(Number(min.toPrecision(4))), 2, height - 18);
  const x = (t: number) => 40 + ((t - (now - windowMs)) / windowMs) * (width - 44);
  const y = (v: number) => 6 + (1 - (v - min) / (max - min)) * (height - 26);
  series.forEach((s, i) => {
    g.strokeStyle = COLOURS[i % COLOURS.length]!;
    g.lineWidth = 1.5;
    g.beginPath();
    s.points.forEach(([t, v], j) => {
      if (j === 0) g.moveTo(x(t), y(v));
      else g.lineTo(x(t), y(v));
    });
    g.stroke();
    const last = s.points.at(-1);
    if (last) {
      g.fillStyle = g.strokeStyle;
      g.fillRect(x(last[0]) - 2, y(last[1]) - 2, 4, 4);
    }
  });
}
