// The Color Stroke nodes' page side (served through WEB_DIRECTORY):
// - COLORSTROKE_CANVAS: the Color Stroke Painter's canvas. It shows the drawing, paints a transparent stroke
//   layer at the drawing's pixel size (brush, eraser, eyedropper, undo/redo, clear), uploads the layer to
//   input/colorstroke/ through ComfyUI's /upload/image and keeps its name as the widget value, so a saved
//   workflow and the API prompt name the file (nodes/node_classes.py, ColorStrokePainter, reads it);
// - COLORSTROKE_COLOR: a colour picker for the preprocessor's background (#RRGGBB);
// - the server's "color_stroke.notice" messages shown as toasts (nodes/names.py, tell, sends them).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const STROKE_FOLDER = "colorstroke";
const NOTICE_EVENT = "color_stroke.notice";
const DRAWING_PREVIEW = "color_stroke_drawing";
const UNDO_LIMIT = 20;
const MASK_EDITOR_SAVE = /^clipspace\/clipspace-painted(?:-masked)?-(\d+)\.png$/;

function plainName(name) {
  return String(name ?? "").replace(/\s*\[(input|output|temp)\]$/, "");
}

// "sub/file.png [type]" -> a /view URL
function viewUrl(name, type = "input") {
  const annotated = String(name).match(/\[(input|output|temp)\]$/);
  const plain = plainName(name);
  const slash = plain.lastIndexOf("/");
  const params = new URLSearchParams({
    filename: plain.slice(slash + 1), subfolder: slash < 0 ? "" : plain.slice(0, slash),
    type: annotated ? annotated[1] : type,
  });
  return api.apiURL(`/view?${params}&rand=${Math.random()}`);
}

function loadImage(url) {
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => resolve(null);
    image.src = url;
  });
}

function element(tag, props = {}, style = {}) {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.style, style);
  return node;
}

function toast(severity, detail) {
  app.extensionManager?.toast?.add({ severity, summary: "Color Stroke", detail, life: 12000 });
}

// The painter's canvas and its stroke layer (in drawing pixels).
class StrokeCanvas {
  constructor(node) {
    this.node = node;
    this.value = "";
    this.drawing = null;             // HTMLImageElement shown under the strokes
    this.layer = element("canvas", { width: 512, height: 512 });
    this.stroke = element("canvas"); // the stroke being painted, at full alpha
    this.undo = [];
    this.redo = [];
    this.tool = "brush";
    this.saving = Promise.resolve();
    this.build();
  }

  build() {
    const button = (label, title, onClick) => {
      const b = element("button", { textContent: label, title }, {
        padding: "1px 6px", fontSize: "12px", cursor: "pointer", borderRadius: "4px",
        border: "1px solid var(--border-color, #555)", background: "var(--comfy-input-bg, #222)",
        color: "var(--input-text, #ddd)",
      });
      b.addEventListener("click", (event) => { event.stopPropagation(); onClick(); });
      return b;
    };
    this.root = element("div", { className: "color-stroke-painter" },
      { display: "flex", flexDirection: "column", gap: "4px", width: "100%", height: "100%", minHeight: "0" });
    const row = () => element("div", {}, { display: "flex", flexWrap: "wrap", gap: "4px", alignItems: "center",
      fontSize: "12px", color: "var(--input-text, #ddd)" });
    this.colour = element("input", { type: "color", value: "#e03c28", title: "Brush colour" },
      { width: "28px", height: "22px", padding: "0", border: "none", background: "none" });
    this.tools = {
      brush: button("Brush", "Paint strokes (B)", () => this.setTool("brush")),
      eraser: button("Eraser", "Erase strokes (E)", () => this.setTool("eraser")),
      picker: button("Pick", "Eyedropper: take a colour from the strokes or the drawing (I)", () => this.setTool("picker")),
    };
    this.size = element("input", { type: "range", min: 1, max: 200, value: 12, title: "Brush size (drawing pixels)" },
      { width: "90px" });
    this.opacity = element("input", { type: "range", min: 5, max: 100, value: 100, title: "Brush opacity (%)" },
      { width: "70px" });
    const label = (text) => element("span", { textContent: text });
    const sizeText = label(""), opacityText = label("");
    const showValues = () => {
      sizeText.textContent = `${this.size.value} px`;
      opacityText.textContent = `${this.opacity.value}%`;
    };
    this.size.addEventListener("input", showValues);
    this.opacity.addEventListener("input", showValues);
    showValues();
    const tools = row(), brush = row();
    tools.append(this.colour, ...Object.values(this.tools),
      button("Undo", "Undo (Ctrl+Z)", () => this.step(this.undo, this.redo)),
      button("Redo", "Redo (Ctrl+Y)", () => this.step(this.redo, this.undo)),
      button("Clear", "Remove every stroke", () => this.clear()));
    brush.append(label("size"), this.size, sizeText, label("opacity"), this.opacity, opacityText);
    this.frame = element("div", {}, { flex: "1", minHeight: "0", display: "flex", alignItems: "center",
      justifyContent: "center", overflow: "hidden" });
    this.view = element("canvas", { className: "color-stroke-view" }, { touchAction: "none", cursor: "crosshair" });
    this.frame.append(this.view);
    this.status = element("div", {}, { fontSize: "11px", opacity: "0.8", whiteSpace: "nowrap", overflow: "hidden",
      textOverflow: "ellipsis", color: "var(--input-text, #ddd)" });
    this.root.append(tools, brush, this.frame, this.status);
    this.setTool("brush");
    new ResizeObserver(() => this.render()).observe(this.frame);
    for (const type of ["pointerdown", "pointermove", "pointerup", "pointercancel"]) {
      this.view.addEventListener(type, (event) => this.pointer(event));
    }
    this.root.addEventListener("keydown", (event) => this.key(event));
    this.root.tabIndex = 0;
  }

  setTool(tool) {
    this.tool = tool;
    for (const [name, b] of Object.entries(this.tools)) {
      b.style.outline = name === tool ? "2px solid var(--p-primary-color, #4a90e2)" : "none";
    }
  }

  key(event) {
    const keys = { b: () => this.setTool("brush"), e: () => this.setTool("eraser"), i: () => this.setTool("picker") };
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      this.step(event.shiftKey ? this.redo : this.undo, event.shiftKey ? this.undo : this.redo);
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "y") {
      this.step(this.redo, this.undo);
    } else if (!event.ctrlKey && !event.metaKey && keys[event.key]) {
      keys[event.key]();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }

  // --- what is shown -----------------------------------------------------------------------------------
  drawingName() {
    const slot = this.node.inputs?.findIndex((input) => input.name === "drawing") ?? -1;
    if (slot >= 0 && this.node.inputs[slot].link != null) {
      const upstream = this.node.getInputNode?.(slot);
      const file = upstream?.widgets?.find((w) => w.name === "image")?.value;
      return typeof file === "string" && file ? file : this.ranDrawing ?? null;
    }
    const value = plainName(this.node.widgets?.find((w) => w.name === "image")?.value ?? "");
    const save = value.match(MASK_EDITOR_SAVE);
    return save ? `clipspace/clipspace-mask-${save[1]}.png` : value || null;
  }

  async showDrawing() {
    const name = this.drawingName();
    const image = name ? await loadImage(viewUrl(name)) : null;
    this.drawing = image;
    if (image && this.isEmpty() && (this.layer.width !== image.naturalWidth || this.layer.height !== image.naturalHeight)) {
      this.layer.width = image.naturalWidth;
      this.layer.height = image.naturalHeight;
    }
    this.render();
  }

  render() {
    const width = this.layer.width, height = this.layer.height;
    const box = this.frame.getBoundingClientRect();
    if (box.width < 2 || box.height < 2) return;
    const scale = Math.min(box.width / width, box.height / height);
    const ratio = window.devicePixelRatio || 1;
    this.view.style.width = `${Math.floor(width * scale)}px`;
    this.view.style.height = `${Math.floor(height * scale)}px`;
    this.view.width = Math.max(1, Math.floor(width * scale * ratio));
    this.view.height = Math.max(1, Math.floor(height * scale * ratio));
    const ctx = this.view.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, this.view.width, this.view.height);
    if (this.drawing) ctx.drawImage(this.drawing, 0, 0, this.view.width, this.view.height);
    ctx.drawImage(this.layer, 0, 0, this.view.width, this.view.height);
    if (this.painting) {
      ctx.globalAlpha = this.opacity.value / 100;
      ctx.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
      ctx.drawImage(this.stroke, 0, 0, this.view.width, this.view.height);
      ctx.globalAlpha = 1;
      ctx.globalCompositeOperation = "source-over";
      if (this.tool === "eraser" && this.drawing) {  // the erased part shows the drawing again
        ctx.globalCompositeOperation = "destination-over";
        ctx.drawImage(this.drawing, 0, 0, this.view.width, this.view.height);
        ctx.globalCompositeOperation = "source-over";
      }
    }
    this.describe();
  }

  describe(text) {
    const size = `${this.layer.width}×${this.layer.height}`;
    const drawing = this.drawing ? `${this.drawing.naturalWidth}×${this.drawing.naturalHeight}` : "none";
    const state = text ?? (this.value ? `strokes: ${this.value}` : "no strokes yet: paint on the drawing");
    const stretched = this.drawing && (this.drawing.naturalWidth !== this.layer.width ||
      this.drawing.naturalHeight !== this.layer.height) ? " (stretched over the drawing: Clear to paint at its size)" : "";
    this.status.textContent = `drawing ${drawing} · layer ${size}${stretched} · ${state}`;
    this.status.title = this.status.textContent;
  }

  // --- painting --------------------------------------------------------------------------------------------
  at(event) {
    const box = this.view.getBoundingClientRect();
    return [(event.clientX - box.left) * this.layer.width / box.width,
            (event.clientY - box.top) * this.layer.height / box.height];
  }

  pointer(event) {
    event.preventDefault();
    event.stopPropagation();
    const [x, y] = this.at(event);
    if (event.type === "pointerdown") {
      this.root.focus({ preventScroll: true });
      if (this.tool === "picker") return this.pick(x, y);
      this.view.setPointerCapture(event.pointerId);
      this.painting = true;
      this.stroke.width = this.layer.width;
      this.stroke.height = this.layer.height;
      const ctx = this.stroke.getContext("2d");
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.strokeStyle = ctx.fillStyle = this.colour.value;
      ctx.lineWidth = Number(this.size.value);
      ctx.beginPath();
      ctx.arc(x, y, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      this.last = [x, y];
      this.render();
    } else if (event.type === "pointermove" && this.painting) {
      const ctx = this.stroke.getContext("2d");
      ctx.beginPath();
      ctx.moveTo(...this.last);
      ctx.lineTo(x, y);
      ctx.stroke();
      this.last = [x, y];
      this.render();
    } else if ((event.type === "pointerup" || event.type === "pointercancel") && this.painting) {
      this.painting = false;
      this.remember();
      const ctx = this.layer.getContext("2d");
      ctx.globalAlpha = this.opacity.value / 100;
      ctx.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
      ctx.drawImage(this.stroke, 0, 0);
      ctx.globalAlpha = 1;
      ctx.globalCompositeOperation = "source-over";
      this.changed();
    }
  }

  pick(x, y) {
    const px = Math.min(this.layer.width - 1, Math.max(0, Math.floor(x)));
    const py = Math.min(this.layer.height - 1, Math.max(0, Math.floor(y)));
    let [r, g, b, a] = this.layer.getContext("2d").getImageData(px, py, 1, 1).data;
    if (a === 0 && this.drawing) {
      const probe = element("canvas", { width: this.layer.width, height: this.layer.height });
      const ctx = probe.getContext("2d");
      ctx.drawImage(this.drawing, 0, 0, probe.width, probe.height);
      [r, g, b] = ctx.getImageData(px, py, 1, 1).data;
    }
    this.colour.value = "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
    this.setTool("brush");
  }

  remember() {
    this.undo.push(this.layer.getContext("2d").getImageData(0, 0, this.layer.width, this.layer.height));
    if (this.undo.length > UNDO_LIMIT) this.undo.shift();
    this.redo.length = 0;
  }

  step(from, to) {
    if (!from.length) return;
    const ctx = this.layer.getContext("2d");
    to.push(ctx.getImageData(0, 0, this.layer.width, this.layer.height));
    const state = from.pop();
    this.layer.width = state.width;
    this.layer.height = state.height;
    this.layer.getContext("2d").putImageData(state, 0, 0);
    this.changed();
  }

  clear() {
    if (this.isEmpty()) return;
    this.remember();
    this.layer.getContext("2d").clearRect(0, 0, this.layer.width, this.layer.height);
    if (this.drawing) {  // an empty layer takes the drawing's size
      this.layer.width = this.drawing.naturalWidth;
      this.layer.height = this.drawing.naturalHeight;
    }
    this.changed();
  }

  isEmpty() {
    const data = this.layer.getContext("2d").getImageData(0, 0, this.layer.width, this.layer.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i]) return false;
    return true;
  }

  changed() {
    this.render();
    this.saving = this.saving.then(() => this.upload()).catch((error) => {
      this.describe(`not saved: ${error.message}`);
      toast("error", `The stroke layer could not be saved: ${error.message}. Paint again to retry.`);
    });
  }

  // --- the file ------------------------------------------------------------------------------------------
  async upload() {
    if (this.isEmpty()) return this.commit("");
    let name = plainName(this.value);
    if (!name.startsWith(`${STROKE_FOLDER}/strokes-`)) {
      const id = (crypto.randomUUID?.() ?? String(Math.random()).slice(2)).replace(/-/g, "").slice(0, 12);
      name = `${STROKE_FOLDER}/strokes-${id}.png`;
    }
    this.describe("saving…");
    const blob = await new Promise((resolve) => this.layer.toBlob(resolve, "image/png"));
    const body = new FormData();
    body.append("image", blob, name.slice(STROKE_FOLDER.length + 1));
    body.append("type", "input");
    body.append("subfolder", STROKE_FOLDER);
    body.append("overwrite", "true");
    const response = await api.fetchApi("/upload/image", { method: "POST", body });
    if (response.status !== 200) throw new Error(`${response.status} ${response.statusText}`);
    const saved = await response.json();
    this.commit(saved.subfolder ? `${saved.subfolder}/${saved.name}` : saved.name);
  }

  commit(value) {
    this.value = value;
    this.describe();
    this.widget?.callback?.(value);
    this.node.graph?.setDirtyCanvas?.(true, true);
  }

  // A value from a loaded workflow, the API or the Mask Editor (its paint layer): load that layer. A Mask
  // Editor paint layer goes over the strokes already painted here, and the result is saved as our own file.
  async setValue(value) {
    value = value == null ? "" : String(value);
    if (value === this.value) return;
    const fromMaskEditor = plainName(value).startsWith("clipspace/") && !this.isEmpty();
    this.value = value;
    this.undo.length = this.redo.length = 0;
    const image = value ? await loadImage(viewUrl(value)) : null;
    if (value && !image) {
      this.describe(`${plainName(value)} is missing from the input folder: paint again or press Clear`);
      return;
    }
    const ctx = this.layer.getContext("2d");
    if (image && !fromMaskEditor) {
      this.layer.width = image.naturalWidth;
      this.layer.height = image.naturalHeight;
    }
    if (!fromMaskEditor) ctx.clearRect(0, 0, this.layer.width, this.layer.height);
    if (image) ctx.drawImage(image, 0, 0, this.layer.width, this.layer.height);
    if (fromMaskEditor) {
      this.value = "";  // a new file of ours, with both
      this.changed();
    } else {
      this.render();
    }
  }
}

function canvasWidget(node, inputName) {
  const canvas = new StrokeCanvas(node);
  const widget = node.addDOMWidget(inputName, "colorstroke_canvas", canvas.root, {
    getValue: () => canvas.value,
    setValue: (value) => { canvas.setValue(value); },
    getMinHeight: () => 260,
    hideOnZoom: false,
  });
  // the prompt waits for the layer being uploaded, so a Run right after the last stroke sends its file
  widget.serializeValue = async () => {
    await canvas.saving;
    return canvas.value;
  };
  canvas.widget = widget;
  node.colorStrokeCanvas = canvas;
  // The drawing can change without an event reaching us (an upload sets the image widget's value; a wired
  // Load Image's file changes), so each redraw of the node compares the drawing's name with the one shown.
  let shown;
  const onDrawBackground = node.onDrawBackground;
  node.onDrawBackground = function () {
    const result = onDrawBackground?.apply(this, arguments);
    const name = canvas.drawingName();
    if (name !== shown) {
      shown = name;
      canvas.showDrawing();
    }
    return result;
  };
  const onExecuted = node.onExecuted;
  node.onExecuted = function (message) {
    onExecuted?.apply(this, arguments);
    const ran = message?.[DRAWING_PREVIEW]?.[0];
    if (ran) canvas.ranDrawing = `${ran.subfolder ? ran.subfolder + "/" : ""}${ran.filename} [${ran.type}]`;
  };
  // The frontend previews an image-upload node's picture in a widget of this name, once; the canvas already
  // shows the drawing, so an empty widget of that name takes its place.
  node.addCustomWidget({
    name: "$$canvas-image-preview", type: "colorstroke_no_preview", value: "", serialize: false,
    options: { serialize: false }, draw() {}, computeSize: () => [0, -4],
    computeLayoutSize: () => ({ minHeight: 0, maxHeight: 0, minWidth: 0 }),
  });
  return { widget, minWidth: 360, minHeight: 460 };
}

function colourWidget(node, inputName, inputData) {
  const picker = element("input", { type: "color", title: "Background colour of the strokes image" },
    { width: "36px", height: "22px", padding: "0", border: "none", background: "none", cursor: "pointer" });
  const text = element("span", {}, { fontSize: "12px", color: "var(--input-text, #ddd)" });
  const row = element("div", {}, { display: "flex", alignItems: "center", gap: "6px", padding: "0 8px" });
  row.append(element("span", { textContent: inputName }, { fontSize: "12px", opacity: "0.7" }), picker, text);
  let value = inputData?.[1]?.default ?? "#FFFFFF";
  const show = () => { text.textContent = value; if (/^#[0-9a-fA-F]{6}$/.test(value)) picker.value = value.toLowerCase(); };
  const widget = node.addDOMWidget(inputName, "colorstroke_color", row, {
    getValue: () => value,
    setValue: (v) => {  // workflows saved with the old number box hold 0xRRGGBB as a number
      value = typeof v === "number" ? "#" + v.toString(16).padStart(6, "0").toUpperCase() : String(v);
      show();
    },
    getMinHeight: () => 26,
    getMaxHeight: () => 26,
    hideOnZoom: false,
  });
  picker.addEventListener("input", () => { value = picker.value.toUpperCase(); show(); widget.callback?.(value); });
  show();
  return { widget };
}

app.registerExtension({
  name: "ColorStroke.Nodes",
  getCustomWidgets() {
    return { COLORSTROKE_CANVAS: canvasWidget, COLORSTROKE_COLOR: colourWidget };
  },
  async setup() {
    api.addEventListener(NOTICE_EVENT, ({ detail }) => toast("warn", detail.message));
  },
  nodeCreated(node) {
    if (node.comfyClass === "LoadColorStrokeControlNet") {  // room for "polarity_if_unknown  black_on_white"
      node.setSize([Math.max(node.size[0], 400), node.size[1]]);
    }
  },
});
