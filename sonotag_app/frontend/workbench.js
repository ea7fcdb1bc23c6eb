// SonoTag workbench: waveform, spectrogram, per-label lanes and events on ONE time axis,
// with an <audio> player that seeks to the exact instant (st.audio floors to seconds).
//
// Streamlit custom component v2 (inline, no iframe). Python sends `data` (see
// sonotag_core/dashboard/workbench_data.py for the contract); this file draws it and reports back:
//   trigger "pick"   {t, event}            a click or key moved the playhead
//   trigger "review" {event, status}       a/r or the Accept/Reject buttons
//   trigger "span"   {label, onset_s, offset_s, kind}  a marked span: kind "added" (a, or
//                                          Add) or "negative" (r, or Not here)
//   trigger "similar" {onset_s, offset_s, label}  Find similar from the span or event
//   trigger "skip"   {}                    n in a Review next queue: the next moment
// A span is chosen by Shift + drag on the rows, or with [ and ] at the playhead (start,
// end); while one is chosen a and r mark it instead of judging an event. In a queue
// (data.queue) the moment asked about is the span, and a / r answer it.
// Every row's plot canvas has the same left and right edge (one CSS grid column), so one
// x mapping (time -> pixel) serves them all, and one cursor spans them.
// Labels are untrusted text: they only ever reach the DOM as textContent.

const VIRIDIS = [
  [68, 1, 84], [72, 35, 116], [64, 67, 135], [52, 94, 141], [41, 120, 142],
  [32, 144, 140], [34, 167, 132], [68, 190, 112], [121, 209, 81], [189, 222, 38],
  [253, 231, 37],
];
const ROW_H = { timeline: 56, heatmap: 22, events: 22 };
const WAVE_H = 56;
const SPEC_H = 72;
const AXIS_H = 22;
const ACCEPT = "#2e9d4f";
const REJECT = "#9e9e9e";
const ADDED = "added";
const NEGATIVE = "negative";
const SPAN_KINDS = [ADDED, NEGATIVE];

function viridis(v) {
  const x = Math.max(0, Math.min(1, v)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

function bytes(b64) {
  if (!b64) return new Uint8Array(0);
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function clock(seconds, decimals = 2) {
  // m:ss.ss under an hour, h:mm:ss.ss above: the same form as sonotag_core.domain.timefmt
  const s = Math.max(0, seconds);
  const scale = 10 ** decimals;
  const total = Math.round(s * scale) / scale;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total - h * 3600 - m * 60;
  let ss = sec.toFixed(decimals);
  if (sec < 10) ss = "0" + ss;
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function niceStep(span, px) {
  // a tick every ~90 px, on 1-2-5 steps (and minutes/hours above a minute)
  const raw = (span * 90) / Math.max(px, 1);
  const steps = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  for (const s of steps) if (s >= raw) return s;
  return 3600 * Math.ceil(raw / 3600);
}

function isTyping(target) {
  const el = target && target.closest ? target : null;
  if (!el) return false;
  const tag = (el.tagName || "").toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
}

class Workbench {
  constructor(root) {
    this.root = root;
    this.el = root.querySelector(".wb");
    this.rowsEl = root.querySelector(".wb-rows");
    this.cursor = root.querySelector(".wb-cursor");
    this.audio = root.querySelector("audio");
    this.clockEl = root.querySelector(".wb-clock");
    this.infoEl = root.querySelector(".wb-info");
    this.loopEl = root.querySelector(".wb-loop");
    this.playBtn = root.querySelector(".wb-play");
    this.spanEl = root.querySelector(".wb-span");
    this.spanBar = root.querySelector(".wb-spanbar");
    this.spanLabel = root.querySelector(".wb-span-label");
    this.spanText = root.querySelector(".wb-span-text");
    this.span = null; // {onset_s, offset_s, label}: the chosen span
    this.spanStart = null; // [ pressed: the span's start, waiting for ]
    this.data = null;
    this.rows = [];
    this.t0 = 0;
    this.t1 = 1;
    this.selected = null; // index into this.events
    this.events = [];
    this.lastSeekNonce = null;
    this.raf = 0;
    this.listening = false;
    this.onKey = (e) => this.key(e);
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.rowsEl);
    this.wire();
  }

  wire() {
    const q = (s) => this.root.querySelector(s);
    this.playBtn.onclick = () => this.toggle();
    q(".wb-prev").onclick = () => this.step(-1);
    q(".wb-next").onclick = () => this.step(1);
    q(".wb-accept").onclick = () => this.review("accepted");
    q(".wb-reject").onclick = () => this.review("rejected");
    q(".wb-zoom-in").onclick = () => this.zoom(0.5, this.now());
    q(".wb-zoom-out").onclick = () => this.zoom(2, this.now());
    q(".wb-fit").onclick = () => this.setRange(0, this.duration());
    q(".wb-span-add").onclick = () => this.mark(ADDED);
    q(".wb-span-neg").onclick = () => this.mark(NEGATIVE);
    q(".wb-span-similar").onclick = () => this.similar();
    q(".wb-span-clear").onclick = () => this.setSpan(null);
    this.spanLabel.onchange = () => {
      if (this.span) this.span.label = this.spanLabel.value;
    };
    const a = this.audio;
    a.addEventListener("play", () => this.tick());
    a.addEventListener("pause", () => this.paint());
    a.addEventListener("seeked", () => {
      // what the media element really reached: the browser tests read it
      this.el.dataset.seekedTo = a.currentTime.toFixed(4);
      this.paint();
    });
    a.addEventListener("loadedmetadata", () => {
      // a seek asked for before the audio loaded: the element only kept it as its start
      // position (no "seeked"); seek for real now
      if (this.pendingSeek != null) a.currentTime = this.pendingSeek;
      this.pendingSeek = null;
      this.paint();
    });
    this.rowsEl.addEventListener("pointerdown", (e) => this.down(e));
    this.rowsEl.addEventListener("pointermove", (e) => this.hover(e));
    this.rowsEl.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
  }

  attach() {
    if (!this.listening) {
      document.addEventListener("keydown", this.onKey);
      this.listening = true;
    }
  }

  detach() {
    document.removeEventListener("keydown", this.onKey);
    this.listening = false;
    cancelAnimationFrame(this.raf);
    // a rerun keeps this element; a removed one must not go on playing unseen
    setTimeout(() => {
      if (!this.el.isConnected) this.audio.pause();
    }, 0);
  }

  duration() {
    return this.data ? Math.max(this.data.duration_s, 0.001) : 1;
  }

  now() {
    return this.audio.currentTime || 0;
  }

  // ------------------------------------------------------------------ data

  update(data) {
    const first = this.data === null;
    const sameAudio = !first && this.data.audio_key === data.audio_key;
    this.data = data;
    this.frameS = data.frame_s;
    this.labels = data.labels.map((l) => ({ ...l, probs: bytes(l.probs) }));
    this.events = data.events.slice().sort((x, y) => x.onset_s - y.onset_s || x.id - y.id);
    if (data.overview) {
      const ov = data.overview;
      this.envMin = new Int8Array(bytes(ov.envelope_min).buffer);
      this.envMax = new Int8Array(bytes(ov.envelope_max).buffer);
      this.spec = sameAudio && this.spec ? this.spec : this.specImage(ov);
    } else {
      this.envMin = this.envMax = null;
      this.spec = null;
    }
    if (!sameAudio) {
      if (data.audio_url) this.audio.src = data.audio_url;
      else this.audio.removeAttribute("src");
      this.setRange(0, this.duration(), false);
    }
    this.playBtn.disabled = !data.audio_url;
    this.el.dataset.view = data.view;
    this.el.dataset.labels = String(this.labels.length);
    this.el.dataset.events = String(this.events.length);
    this.el.dataset.reviewed = String(this.events.filter((e) => e.status).length);
    this.el.dataset.renderKey = data.render_key || "";
    const sel = data.selected;
    this.selected = sel == null ? null : this.events.findIndex((e) => e.id === sel);
    if (this.selected < 0) this.selected = null;
    this.buildRows();
    this.fillSpanLabels();
    if (data.span && (!this.span || data.span.key !== this.spanKey)) {
      this.spanKey = data.span.key;
      this.setSpan({ ...data.span }, false);
    } else if (!sameAudio) this.setSpan(null, false);
    this.el.dataset.queue = data.queue ? "1" : "0";
    this.el.dataset.lanes = this.labels.map((l) => l.display).join(" | ");
    this.el.dataset.laneSum = String(
      this.labels.reduce((s, l) => s + l.probs.reduce((a, b) => a + b, 0), 0),
    );
    this.el.dataset.spans = String(this.events.filter((e) => SPAN_KINDS.includes(e.status)).length);
    const seek = data.seek;
    if (seek && seek.nonce !== this.lastSeekNonce) {
      this.lastSeekNonce = seek.nonce;
      if (seek.t != null) this.seek(seek.t, { play: !!seek.play && !first, report: false });
    }
    this.attach();
    this.layout();
  }

  specImage(ov) {
    const cols = ov.n_columns;
    const bands = ov.n_bands;
    const px = bytes(ov.spectrogram);
    if (!cols || !bands || px.length < cols * bands) return null;
    const canvas = document.createElement("canvas");
    canvas.width = cols;
    canvas.height = bands;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(cols, bands);
    const lut = [];
    for (let v = 0; v < 256; v++) lut.push(viridis(v / 255));
    for (let b = 0; b < bands; b++) {
      const y = bands - 1 - b; // low frequencies at the bottom
      for (let c = 0; c < cols; c++) {
        const [r, g, bl] = lut[px[b * cols + c]];
        const o = (y * cols + c) * 4;
        img.data[o] = r;
        img.data[o + 1] = g;
        img.data[o + 2] = bl;
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    return { canvas, colS: ov.column_s, cols };
  }

  buildRows() {
    const view = this.data.view;
    const specs = [];
    if (this.envMin) specs.push({ kind: "wave", name: "Waveform", h: WAVE_H });
    if (this.spec) specs.push({ kind: "spec", name: "Spectrogram", h: SPEC_H });
    this.labels.forEach((l, i) => specs.push({ kind: "label", name: l.display, h: ROW_H[view] || 56, label: i }));
    specs.push({ kind: "axis", name: "", h: AXIS_H });
    const key = JSON.stringify(specs.map((s) => [s.kind, s.name, s.h]));
    if (key !== this.rowsKey) {
      this.rowsKey = key;
      this.rowsEl.querySelectorAll(".wb-row").forEach((r) => r.remove());
      this.rows = specs.map((s) => {
        const row = document.createElement("div");
        row.className = `wb-row wb-${s.kind}`;
        const name = document.createElement("div");
        name.className = "wb-name";
        name.textContent = s.name;
        name.title = s.name;
        if (s.kind === "label") {
          const l = this.labels[s.label];
          name.style.setProperty("--wb-swatch", l.color);
          name.classList.add("wb-swatch");
          if (l.negative) name.classList.add("wb-negative");
        }
        const canvas = document.createElement("canvas");
        canvas.className = "wb-plot";
        canvas.style.height = `${s.h}px`;
        row.append(name, canvas);
        this.rowsEl.insertBefore(row, this.cursor);
        return { ...s, canvas, name };
      });
    } else {
      this.rows.forEach((r, i) => Object.assign(r, { label: specs[i].label }));
    }
    const counts = this.data.review_counts || {};
    this.rows.forEach((r) => {
      if (r.kind !== "label") return;
      const l = this.labels[r.label];
      const c = counts[l.name];
      r.name.dataset.counts = c ? `${c.reviewed}/${c.events}` : "";
    });
  }

  // ------------------------------------------------------------------ geometry

  layout() {
    const dpr = window.devicePixelRatio || 1;
    for (const r of this.rows) {
      const w = r.canvas.clientWidth;
      r.canvas.width = Math.max(1, Math.round(w * dpr));
      r.canvas.height = Math.max(1, Math.round(r.h * dpr));
    }
    this.draw();
  }

  plotBox() {
    const c = this.rows.length ? this.rows[0].canvas : null;
    return c ? { left: c.offsetLeft, width: c.clientWidth } : { left: 0, width: 1 };
  }

  timeAt(clientX) {
    const rect = this.rows[0].canvas.getBoundingClientRect();
    const f = (clientX - rect.left) / Math.max(rect.width, 1);
    return Math.max(0, Math.min(this.duration(), this.t0 + f * (this.t1 - this.t0)));
  }

  setRange(t0, t1, redraw = true) {
    const d = this.duration();
    const minSpan = Math.min(d, this.frameS * 4 || 1);
    let span = Math.max(minSpan, Math.min(d, t1 - t0));
    let a = Math.max(0, Math.min(t0, d - span));
    this.t0 = a;
    this.t1 = a + span;
    this.el.dataset.t0 = this.t0.toFixed(3);
    this.el.dataset.t1 = this.t1.toFixed(3);
    if (redraw) this.draw();
  }

  zoom(factor, around) {
    const span = (this.t1 - this.t0) * factor;
    const f = (around - this.t0) / Math.max(this.t1 - this.t0, 1e-9);
    const c = Math.max(0, Math.min(1, f));
    this.setRange(around - c * span, around - c * span + span);
  }

  // ------------------------------------------------------------------ drawing

  colors() {
    const cs = getComputedStyle(this.el);
    const v = (n, d) => (cs.getPropertyValue(n) || "").trim() || d;
    return {
      text: v("--st-text-color", "#31333f"),
      grid: v("--st-border-color", "rgba(128,128,128,0.25)"),
      bg: v("--st-secondary-background-color", "rgba(128,128,128,0.08)"),
      threshold: "#e45756",
    };
  }

  draw() {
    if (!this.data || !this.rows.length) return;
    const col = this.colors();
    for (const r of this.rows) {
      const ctx = r.canvas.getContext("2d");
      const dpr = r.canvas.width / Math.max(r.canvas.clientWidth, 1);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const w = r.canvas.clientWidth;
      ctx.clearRect(0, 0, w, r.h);
      if (r.kind === "wave") this.drawWave(ctx, w, r.h, col);
      else if (r.kind === "spec") this.drawSpec(ctx, w, r.h);
      else if (r.kind === "label") this.drawLabel(ctx, w, r.h, r.label, col);
      else this.drawAxis(ctx, w, r.h, col);
    }
    this.paint();
  }

  pooled(values, perUnitS, w, reduce, init) {
    // one value per pixel: the max (or min) over the units that pixel covers, so a
    // one-frame spike stays visible at any zoom (max-pooled per visible bucket)
    const out = new Float32Array(w);
    const span = this.t1 - this.t0;
    for (let x = 0; x < w; x++) {
      const a = Math.floor((this.t0 + (x / w) * span) / perUnitS);
      const b = Math.max(a + 1, Math.floor((this.t0 + ((x + 1) / w) * span) / perUnitS));
      let m = init;
      for (let i = Math.max(0, a); i < Math.min(b, values.length); i++) m = reduce(m, values[i]);
      out[x] = m;
    }
    return out;
  }

  drawWave(ctx, w, h, col) {
    const bucket = this.data.overview.bucket_s;
    const hi = this.pooled(this.envMax, bucket, w, Math.max, -128);
    const lo = this.pooled(this.envMin, bucket, w, Math.min, 127);
    ctx.fillStyle = col.text;
    ctx.globalAlpha = 0.55;
    const mid = h / 2;
    for (let x = 0; x < w; x++) {
      if (hi[x] < lo[x]) continue;
      const top = mid - (hi[x] / 127) * (mid - 1);
      const bot = mid - (lo[x] / 127) * (mid - 1);
      ctx.fillRect(x, top, 1, Math.max(1, bot - top));
    }
    ctx.globalAlpha = 1;
  }

  drawSpec(ctx, w, h) {
    const s = this.spec;
    const sx = this.t0 / s.colS;
    const sw = Math.max((this.t1 - this.t0) / s.colS, 0.5);
    ctx.imageSmoothingEnabled = sw > w;
    ctx.drawImage(s.canvas, sx, 0, Math.min(sw, s.cols - sx), s.canvas.height, 0, 0,
      Math.min(w, (w * (s.cols - sx)) / sw), h);
  }

  x(t, w) {
    return ((t - this.t0) / (this.t1 - this.t0)) * w;
  }

  drawLabel(ctx, w, h, i, col) {
    const l = this.labels[i];
    const view = this.data.view;
    const p = this.pooled(l.probs, this.frameS, w, Math.max, -1);
    const endX = this.x(this.duration(), w);
    if (view === "heatmap") {
      for (let x = 0; x < Math.min(w, endX); x++) {
        if (p[x] < 0) continue;
        const [r, g, b] = viridis(p[x] / 255);
        ctx.fillStyle = `rgb(${r | 0},${g | 0},${b | 0})`;
        ctx.fillRect(x, 1, 1, h - 2);
      }
    }
    const evs = this.events.filter((e) => e.label === l.name);
    for (const e of evs) this.drawEvent(ctx, e, w, h, l.color, view);
    if (view === "timeline") {
      ctx.fillStyle = col.bg;
      ctx.globalAlpha = 1;
      ctx.strokeStyle = l.color;
      ctx.lineWidth = 1.25;
      ctx.beginPath();
      let started = false;
      for (let x = 0; x < w; x++) {
        if (p[x] < 0) continue;
        const y = h - 2 - (p[x] / 255) * (h - 4);
        if (!started) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
        started = true;
      }
      ctx.stroke();
      if (!l.negative && l.threshold != null) {
        const y = h - 2 - l.threshold * (h - 4);
        ctx.strokeStyle = col.threshold;
        ctx.setLineDash([4, 3]);
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(0, y);
        ctx.lineTo(w, y);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    ctx.strokeStyle = col.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, h - 0.5);
    ctx.lineTo(w, h - 0.5);
    ctx.stroke();
  }

  drawEvent(ctx, e, w, h, color, view) {
    const x0 = this.x(e.onset_s, w);
    const x1 = Math.max(x0 + 1, this.x(e.offset_s, w));
    if (x1 < 0 || x0 > w) return;
    const selected = this.selected != null && this.events[this.selected] === e;
    if (SPAN_KINDS.includes(e.status)) return this.drawMarked(ctx, e, x0, x1, h, color, selected);
    const fill = e.status === "rejected" ? REJECT : color;
    if (view === "heatmap") {
      ctx.strokeStyle = e.status === "accepted" ? ACCEPT : "#ffffff";
      ctx.lineWidth = selected ? 2.5 : 1;
      ctx.strokeRect(x0 + 0.5, 1.5, x1 - x0 - 1, h - 3);
      return;
    }
    ctx.globalAlpha = view === "events" ? (e.status === "rejected" ? 0.35 : 0.85) : 0.22;
    ctx.fillStyle = fill;
    ctx.fillRect(x0, 0, x1 - x0, h);
    ctx.globalAlpha = 1;
    if (e.status === "accepted") {
      ctx.fillStyle = ACCEPT;
      ctx.fillRect(x0, 0, x1 - x0, 3);
    } else if (e.status === "rejected") {
      ctx.strokeStyle = REJECT;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x0, h / 2);
      ctx.lineTo(x1, h / 2);
      ctx.stroke();
    }
    if (selected) {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 + 1, 1, Math.max(x1 - x0 - 2, 1), h - 2);
    }
  }

  drawMarked(ctx, e, x0, x1, h, color, selected) {
    // a marked span: "added" hatched in the label's colour with a solid outline, "negative"
    // grey cross-hatching with a dashed one: never mistaken for a detection
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, 0, x1 - x0, h);
    ctx.clip();
    const added = e.status === ADDED;
    ctx.strokeStyle = added ? color : REJECT;
    ctx.globalAlpha = added ? 0.55 : 0.6;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = x0 - h; x < x1; x += 6) {
      ctx.moveTo(x, h);
      ctx.lineTo(x + h, 0);
      if (!added) {
        ctx.moveTo(x, 0);
        ctx.lineTo(x + h, h);
      }
    }
    ctx.stroke();
    ctx.restore();
    ctx.strokeStyle = added ? ACCEPT : REJECT;
    ctx.lineWidth = selected ? 2.5 : 1.5;
    ctx.setLineDash(added ? [] : [4, 3]);
    ctx.strokeRect(x0 + 0.75, 0.75, Math.max(x1 - x0 - 1.5, 1), h - 1.5);
    ctx.setLineDash([]);
  }

  drawAxis(ctx, w, h, col) {
    const span = this.t1 - this.t0;
    const step = niceStep(span, w);
    const dec = step < 1 ? (step < 0.1 ? 2 : 1) : 0;
    ctx.fillStyle = col.text;
    ctx.strokeStyle = col.text;
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "top";
    ctx.globalAlpha = 0.8;
    for (let t = Math.ceil(this.t0 / step) * step; t <= this.t1 + 1e-9; t += step) {
      const x = this.x(t, w);
      ctx.fillRect(Math.round(x), 0, 1, 4);
      const text = clock(t, dec);
      const tw = ctx.measureText(text).width;
      ctx.fillText(text, Math.max(0, Math.min(w - tw, x - tw / 2)), 6);
    }
    ctx.globalAlpha = 1;
  }

  paint() {
    // the cursor and the clock: cheap, every animation frame while playing
    const t = this.now();
    const box = this.plotBox();
    const inView = t >= this.t0 && t <= this.t1;
    this.cursor.style.display = inView ? "block" : "none";
    this.cursor.style.left = `${box.left + this.x(t, box.width)}px`;
    this.clockEl.textContent = `${clock(t)} / ${clock(this.duration())}`;
    this.el.dataset.playing = this.audio.paused ? "0" : "1";
    this.playBtn.textContent = this.audio.paused ? "▶" : "❚❚";
    this.playBtn.setAttribute("aria-label", this.audio.paused ? "Play" : "Pause");
    const e = this.selected != null ? this.events[this.selected] : null;
    this.el.dataset.selectedOnset = e ? String(e.onset_s) : "";
    this.paintSpan(box);
  }

  // ------------------------------------------------------------------ spans

  paintSpan(box = this.plotBox()) {
    const s = this.span;
    if (!s || s.offset_s < this.t0 || s.onset_s > this.t1) {
      this.spanEl.style.display = "none";
    } else {
      const a = Math.max(0, this.x(s.onset_s, box.width));
      const b = Math.min(box.width, this.x(s.offset_s, box.width));
      this.spanEl.style.display = "block";
      this.spanEl.style.left = `${box.left + a}px`;
      this.spanEl.style.width = `${Math.max(2, b - a)}px`;
    }
  }

  fillSpanLabels() {
    const names = this.labels.filter((l) => !l.negative).map((l) => l.name);
    const key = JSON.stringify(names);
    if (key !== this.spanLabelsKey) {
      this.spanLabelsKey = key;
      const keep = this.spanLabel.value;
      this.spanLabel.replaceChildren(
        ...names.map((n) => {
          const o = document.createElement("option");
          o.value = n;
          o.textContent = n; // labels are untrusted: text only
          return o;
        }),
      );
      if (names.includes(keep)) this.spanLabel.value = keep;
    }
    this.syncSpanBar();
  }

  syncSpanBar() {
    // the bar keeps its place whether a span is chosen or not: the rows below must not
    // jump while a drag is choosing one
    const q = (c) => this.root.querySelector(c);
    const s = this.span;
    const names = this.labels.filter((l) => !l.negative);
    const marking = !!this.data.can_review && !!s && names.length > 0;
    q(".wb-span-add").disabled = !marking;
    q(".wb-span-neg").disabled = !marking;
    q(".wb-span-similar").disabled = !this.data.can_search;
    q(".wb-span-similar").hidden = !!this.data.queue;
    q(".wb-span-clear").hidden = !!this.data.queue || !s;
    this.spanLabel.disabled = !!this.data.queue;
    this.spanLabel.hidden = !s;
    this.spanBar.classList.toggle("wb-spanbar-empty", !s);
    if (!s) {
      this.spanText.textContent = "Shift + drag or [ ] marks a span";
    }
  }

  setSpan(span, redraw = true) {
    if (span) {
      const a = Math.max(0, Math.min(span.onset_s, span.offset_s));
      const b = Math.min(this.duration(), Math.max(span.onset_s, span.offset_s));
      const names = this.labels.filter((l) => !l.negative).map((l) => l.name);
      const label = names.includes(span.label) ? span.label : this.spanLabel.value || names[0] || "";
      this.span = { onset_s: a, offset_s: Math.max(b, a + this.frameS), label };
      this.spanLabel.value = label;
    } else this.span = null;
    this.spanStart = null;
    const s = this.span;
    this.el.dataset.span = s ? `${s.onset_s.toFixed(3)}-${s.offset_s.toFixed(3)}` : "";
    if (s) {
      const verb = this.data.queue ? "Is it" : "Span";
      this.spanText.textContent = `${verb} ${clock(s.onset_s)}–${clock(s.offset_s)}`;
    }
    this.syncSpanBar();
    if (redraw) this.paint();
  }

  bracket(key) {
    // [ starts a span at the playhead, ] ends it there (either order)
    const t = this.now();
    if (key === "[") {
      this.spanStart = t;
      this.el.dataset.spanStart = t.toFixed(3);
      this.infoEl.textContent = `Span starts at ${clock(t)}: move on and press ] to end it`;
      return;
    }
    const start = this.spanStart != null ? this.spanStart : this.span ? this.span.onset_s : 0;
    const label = this.lastLaneLabel();
    this.setSpan({ onset_s: Math.min(start, t), offset_s: Math.max(start, t), label });
  }

  lastLaneLabel() {
    const e = this.selected != null ? this.events[this.selected] : null;
    return e ? e.label : this.spanLabel.value;
  }

  mark(kind) {
    const s = this.span;
    if (!s || !this.data.can_review || !s.label) return;
    if (this.setTrigger) {
      this.setTrigger("span", { label: s.label, onset_s: s.onset_s, offset_s: s.offset_s, kind });
    }
    this.el.dataset.lastMark = `${kind}:${s.label}:${s.onset_s.toFixed(3)}`;
    if (!this.data.queue) this.setSpan(null);
  }

  similar() {
    if (!this.data.can_search || !this.setTrigger) return;
    let s = this.span;
    if (!s) {
      const e = this.selected != null ? this.events[this.selected] : null;
      if (!e) {
        this.infoEl.textContent = "Choose an event or a span first (Shift + drag, or [ and ])";
        return;
      }
      s = { onset_s: e.onset_s, offset_s: e.offset_s, label: e.label };
    }
    this.setTrigger("similar", { onset_s: s.onset_s, offset_s: s.offset_s, label: s.label });
  }

  tick() {
    cancelAnimationFrame(this.raf);
    const loop = () => {
      const a = this.audio;
      const e = this.selected != null ? this.events[this.selected] : null;
      if (this.loopEl.checked && e && a.currentTime >= e.offset_s) a.currentTime = e.onset_s;
      const t = a.currentTime;
      if (!a.paused && (t > this.t1 || t < this.t0) && this.t1 - this.t0 < this.duration()) {
        this.setRange(t, t + (this.t1 - this.t0)); // page along with the playhead
      }
      this.paint();
      if (!a.paused) this.raf = requestAnimationFrame(loop);
    };
    this.raf = requestAnimationFrame(loop);
  }

  // ------------------------------------------------------------------ actions

  seek(t, { play = true, report = true, event = null } = {}) {
    const a = this.audio;
    const target = Math.max(0, Math.min(t, this.duration()));
    if (a.readyState === 0) this.pendingSeek = target;
    a.currentTime = target;
    if (target < this.t0 || target > this.t1) {
      const span = this.t1 - this.t0;
      this.setRange(target - span * 0.25, target + span * 0.75);
    }
    if (play && a.src) a.play().catch(() => {});
    this.paint();
    if (report && this.setTrigger) this.setTrigger("pick", { t: target, event });
  }

  toggle() {
    const a = this.audio;
    if (!a.src) return;
    if (a.paused) {
      const s = this.span;
      if (this.data.queue && s && (a.currentTime < s.onset_s || a.currentTime >= s.offset_s + 2)) {
        a.currentTime = Math.max(0, s.onset_s - 1); // a queued moment plays from just before it
      }
      const e = this.selected != null ? this.events[this.selected] : null;
      if (this.loopEl.checked && e && (a.currentTime < e.onset_s || a.currentTime >= e.offset_s)) {
        a.currentTime = e.onset_s;
      }
      a.play().catch(() => {});
    } else a.pause();
  }

  select(index, { play = true } = {}) {
    if (index == null || !this.events.length) return;
    this.selected = Math.max(0, Math.min(this.events.length - 1, index));
    const e = this.events[this.selected];
    this.draw();
    this.seek(e.onset_s, { play, event: e.id });
  }

  step(direction) {
    if (!this.events.length) return;
    if (this.selected == null) {
      const t = this.now();
      const i = this.events.findIndex((e) => e.onset_s > t + 1e-6);
      this.select(direction > 0 ? (i < 0 ? this.events.length - 1 : i) : Math.max(0, (i < 0 ? this.events.length : i) - 1));
    } else this.select(this.selected + direction);
  }

  review(status) {
    if (this.selected == null || !this.data.can_review) return;
    const e = this.events[this.selected];
    if (SPAN_KINDS.includes(e.status)) return; // a marked span is deleted below the table
    e.status = e.status === status ? "" : status; // pressing it again clears the verdict
    this.el.dataset.reviewed = String(this.events.filter((x) => x.status).length);
    this.draw();
    if (this.setTrigger) this.setTrigger("review", { event: e.id, status: e.status, label: e.label, onset_s: e.onset_s });
  }

  key(e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || isTyping(e.target)) return;
    const path = e.composedPath ? e.composedPath() : [];
    if (path.some((n) => isTyping(n))) return;
    const k = e.key;
    const tag = ((e.target && e.target.tagName) || "").toLowerCase();
    if (k === " " && (tag === "button" || tag === "a")) return; // space presses what has focus
    if (k === " ") this.toggle();
    else if (k === "n" && this.data.queue) {
      if (this.setTrigger) this.setTrigger("skip", { at: this.span ? this.span.onset_s : null });
    } else if (k === "n") this.step(1);
    else if (k === "p") this.step(-1);
    else if (k === "a" && this.span) this.mark(ADDED);
    else if (k === "r" && this.span) this.mark(NEGATIVE);
    else if (k === "a") this.review("accepted");
    else if (k === "r") this.review("rejected");
    else if (k === "[" || k === "]") this.bracket(k);
    else if (k === "Escape" && this.span && !this.data.queue) this.setSpan(null);
    else if (k === "l") this.loopEl.checked = !this.loopEl.checked;
    else return;
    e.preventDefault();
  }

  down(e) {
    if (!this.rows.length || e.button !== 0) return;
    if (e.shiftKey && !this.data.queue) return this.dragSpan(e);
    const startX = e.clientX;
    const t0 = this.t0;
    const t1 = this.t1;
    const rect = this.rows[0].canvas.getBoundingClientRect();
    let moved = false;
    const move = (m) => {
      const dx = m.clientX - startX;
      if (Math.abs(dx) > 4) moved = true;
      if (moved) {
        const dt = (dx / Math.max(rect.width, 1)) * (t1 - t0);
        this.setRange(t0 - dt, t1 - dt);
      }
    };
    const up = (u) => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      if (!moved && u.clientX >= rect.left && u.clientX <= rect.right) this.click(u);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  dragSpan(e) {
    // Shift + drag: choose a span (its label: the lane the drag started on)
    const from = this.timeAt(e.clientX);
    const row = this.rows.find((r) => r.canvas === e.target);
    const lane = row && row.kind === "label" ? this.labels[row.label] : null;
    const label = lane && !lane.negative ? lane.name : this.spanLabel.value;
    e.preventDefault();
    const move = (m) => this.setSpan({ onset_s: from, offset_s: this.timeAt(m.clientX), label });
    const up = (u) => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      move(u);
      this.infoEl.textContent = "a: add it as an event of the label · r: checked, not there · Esc: clear";
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  click(e) {
    const t = this.timeAt(e.clientX);
    const row = this.rows.find((r) => r.canvas === e.target);
    if (row && row.kind === "label") {
      const name = this.labels[row.label].name;
      const i = this.events.findIndex((ev) => ev.label === name && ev.onset_s <= t && t < ev.offset_s);
      if (i >= 0) return this.select(i); // a region plays from its onset
    }
    this.selected = null;
    this.draw();
    this.seek(t);
  }

  hover(e) {
    if (!this.rows.length || !this.data) return;
    const row = this.rows.find((r) => r.canvas === e.target);
    if (!row) return;
    const t = this.timeAt(e.clientX);
    let text = clock(t);
    if (row.kind === "label") {
      const l = this.labels[row.label];
      const f = Math.floor(t / this.frameS);
      if (f < l.probs.length) text = `${l.display} · ${clock(t)} · p = ${(l.probs[f] / 255).toFixed(2)}`;
    }
    this.infoEl.textContent = text;
  }

  wheel(e) {
    if (!this.rows.length) return;
    const horizontal = Math.abs(e.deltaX) > Math.abs(e.deltaY);
    if (horizontal || e.shiftKey) {
      const span = this.t1 - this.t0;
      const d = ((horizontal ? e.deltaX : e.deltaY) / 500) * span;
      this.setRange(this.t0 + d, this.t1 + d);
      e.preventDefault();
    } else if (e.ctrlKey || e.metaKey || e.altKey) {
      this.zoom(e.deltaY > 0 ? 1.25 : 0.8, this.timeAt(e.clientX));
      e.preventDefault();
    }
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let wb = parentElement.__sonotagWorkbench;
  if (!wb) {
    wb = new Workbench(parentElement);
    parentElement.__sonotagWorkbench = wb;
  }
  wb.setTrigger = setTriggerValue;
  wb.update(data);
  return () => wb.detach();
}
