// Renders the OpenAPI document as a list of operations with their parameters, body and
// responses, and says how to authenticate when the document declares security schemes.
// Text only: every value goes through textContent, never through HTML parsing. It loads
// nothing but the document, from the same origin.
"use strict";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function refName(ref) {
  return ref.split("/").pop();
}

function schemaName(content) {
  for (const media of Object.values(content || {})) {
    const schema = media.schema || {};
    if (schema.$ref) return refName(schema.$ref);
    if (schema.items && schema.items.$ref) return "[" + refName(schema.items.$ref) + "]";
  }
  return "";
}

// What a response or body is: its media types and, when it has one, its schema.
function describeContent(content) {
  const types = Object.keys(content || {}).join(", ");
  const schema = schemaName(content);
  return (types ? " [" + types + "]" : "") + (schema ? " → " + schema : "");
}

// The scheme names an operation requires: its own `security`, else the document's.
function requiredSchemes(doc, op) {
  const requirements = op.security !== undefined ? op.security : doc.security || [];
  const names = new Set();
  for (const requirement of requirements) {
    for (const name of Object.keys(requirement)) names.add(name);
  }
  return [...names];
}

function howToSend(scheme) {
  if (scheme.type === "http" && (scheme.scheme || "").toLowerCase() === "bearer") {
    return "Authorization: Bearer <token>";
  }
  if (scheme.type === "http") return "Authorization: " + (scheme.scheme || "") + " …";
  if (scheme.type === "apiKey") return `${scheme.name} (${scheme.in})`;
  return scheme.type || "";
}

function renderSecurity(doc) {
  const target = document.getElementById("security");
  const schemes = Object.entries((doc.components || {}).securitySchemes || {});
  if (!schemes.length) return;
  for (const [name, scheme] of schemes) {
    const line = el("p");
    line.append(`Operations marked "${name}" need `, el("code", howToSend(scheme)), ".");
    if (scheme.description) line.append(" " + scheme.description);
    target.append(line);
  }
  target.hidden = false;
}

function renderOperation(doc, path, method, op) {
  const section = el("section");
  const title = el("h2");
  title.append(el("span", method, "method"), el("code", path));
  for (const name of requiredSchemes(doc, op)) title.append(el("span", name, "lock"));
  section.append(title);
  if (op.summary || op.description) section.append(el("p", op.summary || op.description));
  const params = op.parameters || [];
  if (params.length) {
    const list = el("ul");
    for (const p of params) {
      if (p.$ref) {
        list.append(el("li", refName(p.$ref)));
        continue;
      }
      list.append(el("li", `${p.name} (${p.in}${p.required ? ", required" : ""}): ${p.description || ""}`));
    }
    section.append(el("h3", "Parameters"), list);
  }
  if (op.requestBody) {
    const content = op.requestBody.content;
    const types = Object.keys(content || {}).join(", ");
    const schema = schemaName(content);
    const body = op.requestBody.$ref
      ? refName(op.requestBody.$ref)
      : schema && types ? `${schema} (${types})` : schema || types;
    section.append(el("h3", "Body"), el("p", body));
  }
  const responses = el("ul");
  for (const [status, r] of Object.entries(op.responses || {})) {
    const text = r.$ref ? refName(r.$ref) : (r.description || "") + describeContent(r.content);
    responses.append(el("li", `${status}: ${text}`));
  }
  section.append(el("h3", "Responses"), responses);
  return section;
}

async function render() {
  const target = document.getElementById("paths");
  try {
    const response = await fetch("/api-docs/openapi.json");
    const doc = await response.json();
    renderSecurity(doc);
    target.replaceChildren();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      // A path item also holds shared parameters, a summary and servers: only the
      // operations are rendered.
      for (const method of METHODS) {
        if (item[method]) target.append(renderOperation(doc, path, method, item[method]));
      }
    }
  } catch (error) {
    target.replaceChildren(el("p", "The API document could not be loaded: " + error));
  }
}

render();
