// Renders the OpenAPI document as a list of operations with their parameters, body and
// responses. Text only: every value goes through textContent, never through HTML parsing.
"use strict";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function schemaName(content) {
  for (const media of Object.values(content || {})) {
    const schema = media.schema || {};
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.items && schema.items.$ref) return "[" + schema.items.$ref.split("/").pop() + "]";
  }
  return "";
}

async function render() {
  const target = document.getElementById("paths");
  try {
    const response = await fetch("/api-docs/openapi.json");
    const doc = await response.json();
    target.replaceChildren();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const [method, op] of Object.entries(item)) {
        const section = el("section");
        const title = el("h2");
        title.append(el("span", method, "method"), el("code", path));
        if ((op.security || []).length) title.append(el("span", "bearer", "lock"));
        section.append(title);
        if (op.summary || op.description) section.append(el("p", op.summary || op.description));
        const params = op.parameters || [];
        if (params.length) {
          const list = el("ul");
          for (const p of params) {
            list.append(el("li", `${p.name} (${p.in}${p.required ? ", required" : ""}): ${p.description || ""}`));
          }
          section.append(el("h3", "Parameters"), list);
        }
        if (op.requestBody) {
          section.append(el("h3", "Body"), el("p", schemaName(op.requestBody.content)));
        }
        const responses = el("ul");
        for (const [status, r] of Object.entries(op.responses || {})) {
          const schema = schemaName(r.content);
          responses.append(el("li", `${status}: ${r.description || ""}${schema ? " → " + schema : ""}`));
        }
        section.append(el("h3", "Responses"), responses);
        target.append(section);
      }
    }
  } catch (error) {
    target.replaceChildren(el("p", "The API document could not be loaded: " + error));
  }
}

render();
