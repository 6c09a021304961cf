// A small canvas chart (stacked bars or lines over time) with a legend and a hover readout. Drawn by hand
// rather than vendored: it needs no inline styles, so it lives happily under the dashboard's strict CSP.
import { h } from "./dom.js";

export const PALETTE = ["#2456d6", "#e0742b", "#2a9d6f", "#c23b7a", "#7a5cc7", "#c9a227", "#1f9bb4", "#8a6d3b", "#8c8c8c"];

function cssVar(name, otherwise) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || otherwise;
}

/** A round step for about four gridlines up to `max` (whole numbers when the data is counts). */
function niceStep(max, integer) {
  const raw = max > 0 ? max / 4 : 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * p;
  for (const m of [1, 2, 2.5, 5]) {
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  }
  return integer ? Math.max(1, Math.round(step)) : step;
}

/**
 * chart({times: [unix...], series: [{name, values: [...]}], kind: "bar"|"line", format: v => string,
 *        timeFormat: unix => string, height}) -> element (canvas + legend), redrawn on resize.
 */
export function chart({ times, series, kind = "bar", format = String, timeFormat, height = 220, label = "", integer = false }) {
  const canvas = h("canvas", { class: "chart-canvas", role: "img", "aria-label": label });
  const readout = h("div", { class: "chart-readout" });
  const legend = h("div", { class: "chart-legend" }, series.map((s, i) => h("span", { class: "legend-item" }, swatch(i, s), s.name)));
  const wrap = h("div", { class: "chart" }, canvas, readout, legend);
  const colors = series.map((s, i) => (s.name === "other" ? PALETTE[PALETTE.length - 1] : PALETTE[i % (PALETTE.length - 1)]));
  let layout = null;

  function swatch(i, s) {
    const el = h("span", { class: "legend-swatch" });
    el.style.background = s.name === "other" ? PALETTE[PALETTE.length - 1] : PALETTE[i % (PALETTE.length - 1)];
    return el;
  }

  function draw() {
    const width = canvas.clientWidth || 600;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const ink = cssVar("--muted", "#666");
    const grid = cssVar("--line", "#ddd");
    ctx.font = "11px system-ui, sans-serif";
    const n = times.length;
    const totals = times.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
    const max = kind === "bar" ? Math.max(0, ...totals) : Math.max(0, ...series.flatMap((s) => s.values));
    const stepV = niceStep(max, integer);
    const top = stepV * Math.max(1, Math.ceil(max / stepV));
    const left = Math.max(40, ctx.measureText(format(top)).width + 12);
    const pad = { left, right: 10, top: 10, bottom: 24 };
    const w = width - pad.left - pad.right;
    const hgt = height - pad.top - pad.bottom;
    const y = (v) => pad.top + hgt - (v / top) * hgt;
    ctx.strokeStyle = grid;
    ctx.fillStyle = ink;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= top + stepV / 2; v += stepV) {
      ctx.beginPath();
      ctx.moveTo(pad.left, Math.round(y(v)) + 0.5);
      ctx.lineTo(width - pad.right, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(format(v), pad.left - 6, y(v));
    }
    const step = n ? w / n : w;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(w / 80))));
    for (let i = 0; i < n; i += every) ctx.fillText(timeFormat ? timeFormat(times[i]) : String(times[i]), pad.left + step * (i + 0.5), height - pad.bottom + 6);
    if (kind === "bar") {
      const bw = Math.max(1, step * 0.75);
      for (let i = 0; i < n; i++) {
        let acc = 0;
        series.forEach((s, j) => {
          const v = s.values[i] || 0;
          if (!v) return;
          ctx.fillStyle = colors[j];
          ctx.fillRect(pad.left + step * i + (step - bw) / 2, y(acc + v), bw, y(acc) - y(acc + v));
          acc += v;
        });
      }
    } else {
      series.forEach((s, j) => {
        ctx.strokeStyle = colors[j];
        ctx.lineWidth = 2;
        ctx.beginPath();
        s.values.forEach((v, i) => {
          const px = pad.left + step * (i + 0.5);
          if (i) ctx.lineTo(px, y(v || 0));
          else ctx.moveTo(px, y(v || 0));
        });
        ctx.stroke();
      });
      ctx.lineWidth = 1;
    }
    layout = { pad, step, n };
  }

  canvas.addEventListener("mousemove", (ev) => {
    if (!layout || !layout.n) return;
    const rect = canvas.getBoundingClientRect();
    const i = Math.floor((ev.clientX - rect.left - layout.pad.left) / layout.step);
    if (i < 0 || i >= layout.n) {
      readout.textContent = "";
      return;
    }
    const parts = series.filter((s) => s.values[i]).map((s) => `${s.name}: ${format(s.values[i])}`);
    readout.textContent = `${timeFormat ? timeFormat(times[i]) : times[i]} — ${parts.join(" · ") || "0"}`;
  });
  canvas.addEventListener("mouseleave", () => (readout.textContent = ""));
  const observer = new ResizeObserver(() => draw());
  observer.observe(canvas);
  requestAnimationFrame(draw);
  return wrap;
}
