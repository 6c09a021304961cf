// Combos: named fallback / load-balancing groups of models. Create and edit (drag targets to reorder,
// strategy, weights, enable), and "test this combo": one small request, and which target answered.
import { api, getOptional } from "../api.js";
import { t } from "../i18n.js";
import { actionButton, badge, button, busy, card, checkbox, confirmDialog, errorText, field, fmtMs, h, input, notAvailable, replace, select, table, toast } from "../dom.js";
import { datalist, modelChoices } from "../models.js";

export const STRATEGIES = ["priority", "round-robin", "weighted", "random", "least-used", "p2c", "cost-optimized"];

export async function render(root) {
  root.append(h("h1", null, t("nav.combos")), h("p", { class: "lead" }, t("combos.intro")));
  const data = await getOptional("/api/combos");
  if (data === null) {
    root.append(notAvailable(t("combos.not_available")));
    return;
  }
  const choices = await modelChoices().catch(() => []);
  const editorHost = h("div");
  const listHost = h("div");
  const aliasHost = h("div");
  root.append(datalist("combo-models", choices.filter((c) => c.kind !== "combo")), editorHost, listHost, aliasHost);

  async function drawAliases() {
    const data = await getOptional("/api/aliases");
    if (data === null) {
      replace(aliasHost);
      return;
    }
    const pattern = input({ placeholder: "gpt-4*", "data-testid": "alias-pattern" });
    const target = input({ placeholder: "smart", list: "combo-models", "data-testid": "alias-target" });
    const add = button(t("combos.alias_add"), null, { kind: "primary", type: "submit", testid: "alias-add" });
    const form = h("form", { class: "inline-form" }, field(t("combos.alias_pattern"), pattern), field(t("combos.alias_target"), target), add);
    form.addEventListener("submit", busy(add, async () => {
      await api.post("/api/aliases", { pattern: pattern.value.trim(), target: target.value.trim() });
      await drawAliases();
    }));
    replace(aliasHost, card(t("combos.aliases"), h("p", { class: "hint" }, t("combos.aliases_intro")),
      table([
        { label: t("combos.alias_pattern"), cell: (a) => h("code", null, a.pattern) },
        { label: t("combos.alias_target"), cell: (a) => h("code", null, a.target) },
        { label: "", cell: (a) => actionButton(t("common.delete"), async () => {
          await api.del(`/api/aliases/${encodeURIComponent(a.pattern)}`);
          await drawAliases();
        }, { kind: "small danger" }) },
      ], data.aliases || [], { empty: t("combos.no_aliases") }), form));
  }

  async function refresh() {
    const fresh = await api.get("/api/combos");
    drawList(fresh.combos);
  }

  function drawList(combos) {
    replace(listHost, card(t("combos.list"), h("div", { class: "row" }, button(t("combos.new"), () => edit(null), { kind: "primary", testid: "combo-new" })),
      table([
        { label: t("combos.name"), cell: (c) => h("strong", null, c.name) },
        { label: t("combos.strategy"), cell: (c) => badge(c.strategy) },
        { label: t("combos.targets"), cell: (c) => c.targets.map((x, i) => h("span", { class: "target-pill" }, `${i + 1}. ${x.model}${c.strategy === "weighted" ? ` ×${x.weight ?? 1}` : ""}`)) },
        { label: t("combos.enabled"), cell: (c) => {
          const box = h("input", { type: "checkbox", checked: c.enabled !== false, "aria-label": t("combos.enabled"), "data-testid": "combo-enabled" });
          box.addEventListener("change", busy(box, async () => {
            await api.put(`/api/combos/${encodeURIComponent(c.name)}`, { ...bodyOf(c), enabled: box.checked });
            await refresh();
          }));
          return box;
        } },
        { label: "", cell: (c) => {
          const out = h("span", { class: "test-result", "data-testid": "combo-test-result" });
          return h("div", { class: "row nowrap" },
            actionButton(t("combos.test"), async () => {
              replace(out, t("common.loading"));
              const r = await api.post(`/api/combos/${encodeURIComponent(c.name)}/test`);
              replace(out, r.ok
                ? badge(t("combos.test_ok", { target: r.served_by || "?", ms: fmtMs(r.latency_ms) }), "ok")
                : h("span", null, badge(t("combos.test_failed"), "error"), " ", r.error || "", (r.attempts || []).length ? h("span", { class: "muted" }, ` (${r.attempts.map((a) => a.target || a.model || JSON.stringify(a)).join(", ")})`) : null));
            }, { kind: "small", testid: "combo-test" }),
            button(t("common.edit"), () => edit(c), { kind: "small" }),
            actionButton(t("common.delete"), async () => {
              if (!(await confirmDialog(t("combos.delete_confirm", { name: c.name }), { danger: true }))) return;
              await api.del(`/api/combos/${encodeURIComponent(c.name)}`);
              await refresh();
            }, { kind: "small danger" }),
            out);
        } },
      ], combos, { empty: t("combos.none") })));
  }

  function bodyOf(c) {
    return { name: c.name, strategy: c.strategy, targets: c.targets.map((x) => ({ model: x.model, weight: x.weight ?? 1 })), enabled: c.enabled !== false, sticky: Number(c.sticky) || 1, description: c.description || "" };
  }

  function edit(existing) {
    const combo = existing ? bodyOf(existing) : { name: "", strategy: "priority", targets: [{ model: "", weight: 1 }], enabled: true, sticky: 1, description: "" };
    const name = input({ value: combo.name, disabled: Boolean(existing), "data-testid": "combo-name", placeholder: "my-combo" });
    const strategy = select(STRATEGIES.map((s) => [s, t(`combos.s_${s}`, null, s)]), combo.strategy, { "data-testid": "combo-strategy" });
    const description = input({ value: combo.description });
    const enabled = checkbox(t("combos.enabled"), combo.enabled);
    const sticky = input({ type: "number", min: "1", max: "1000", step: "1", value: String(combo.sticky), class: "narrow" });
    const targets = combo.targets.map((x) => ({ ...x }));
    const rows = h("ol", { class: "targets", "data-testid": "combo-targets" });
    let dragFrom = null;

    function drawTargets() {
      const weighted = strategy.value === "weighted";
      replace(rows, targets.map((x, i) => {
        const model = input({ value: x.model, list: "combo-models", placeholder: "provider/model", "data-testid": "combo-target-model", "aria-label": t("combos.model") });
        model.addEventListener("input", () => (x.model = model.value.trim()));
        const weight = input({ type: "number", min: "0", step: "1", value: String(x.weight ?? 1), class: "narrow", "aria-label": t("combos.weight") });
        weight.addEventListener("input", () => (x.weight = Number(weight.value) || 0));
        const li = h("li", { class: "target-row", draggable: "true", "data-index": String(i) },
          h("span", { class: "drag-handle", title: t("combos.drag"), "aria-hidden": "true" }, "⋮⋮"),
          model,
          weighted ? weight : null,
          button("↑", () => move(i, i - 1), { kind: "small", disabled: i === 0, title: t("combos.up") }),
          button("↓", () => move(i, i + 1), { kind: "small", disabled: i === targets.length - 1, title: t("combos.down") }),
          button("×", () => {
            targets.splice(i, 1);
            drawTargets();
          }, { kind: "small", title: t("common.delete"), disabled: targets.length === 1 }));
        li.addEventListener("dragstart", (e) => {
          dragFrom = i;
          e.dataTransfer.effectAllowed = "move";
          e.dataTransfer.setData("text/plain", String(i));
          li.classList.add("dragging");
        });
        li.addEventListener("dragend", () => li.classList.remove("dragging"));
        li.addEventListener("dragover", (e) => {
          e.preventDefault();
          li.classList.add("drop-target");
        });
        li.addEventListener("dragleave", () => li.classList.remove("drop-target"));
        li.addEventListener("drop", (e) => {
          e.preventDefault();
          if (dragFrom !== null) move(dragFrom, i);
          dragFrom = null;
        });
        return li;
      }));
    }

    function move(from, to) {
      if (to < 0 || to >= targets.length || from === to) return;
      const [x] = targets.splice(from, 1);
      targets.splice(to, 0, x);
      drawTargets();
    }

    strategy.addEventListener("change", drawTargets);
    drawTargets();
    const save = button(t("common.save"), null, { kind: "primary", type: "submit", testid: "combo-save" });
    const form = h("form", { class: "form" },
      h("div", { class: "grid3" }, field(t("combos.name"), name), field(t("combos.strategy"), strategy), field(t("combos.description"), description)),
      h("div", { class: "row" }, enabled.el, field(t("combos.sticky"), sticky, t("combos.sticky_hint"))),
      h("h3", null, t("combos.targets")), h("p", { class: "hint" }, t("combos.targets_hint")), rows,
      h("div", { class: "row" }, button(t("combos.add_target"), () => {
        targets.push({ model: "", weight: 1 });
        drawTargets();
      }, { testid: "combo-add-target" })),
      h("div", { class: "row end" }, button(t("common.cancel"), () => replace(editorHost)), save));
    form.addEventListener("submit", busy(save, async () => {
      const body = { name: name.value.trim(), strategy: strategy.value, targets: targets.filter((x) => x.model).map((x) => ({ model: x.model, weight: x.weight ?? 1 })), enabled: enabled.box.checked, sticky: Math.max(1, Math.min(1000, Math.round(Number(sticky.value) || 1))), description: description.value };
      try {
        if (existing) await api.put(`/api/combos/${encodeURIComponent(existing.name)}`, body);
        else await api.post("/api/combos", body);
      } catch (err) {
        toast(errorText(err), "error");
        return;
      }
      toast(t("common.saved"), "ok");
      replace(editorHost);
      await refresh();
    }));
    replace(editorHost, card(existing ? t("combos.edit", { name: existing.name }) : t("combos.new"), form));
    name.focus();
  }

  drawList(data.combos);
  await drawAliases().catch((err) => replace(aliasHost, h("div", { class: "error-box" }, errorText(err))));
}
