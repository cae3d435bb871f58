// The docs page: renders every operation of /api/v1/openapi.json with a form to try it.
// Built with DOM calls and textContent only, so nothing from the document is parsed as HTML.
"use strict";

const SPEC_URL = "/api/v1/openapi.json";

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function resolve(spec, schema) {
  while (schema && schema.$ref) schema = spec.components.schemas[schema.$ref.split("/").pop()];
  return schema || {};
}

// A body to start from: the schema's first example, else its required fields with placeholder values.
function exampleBody(spec, schema) {
  schema = resolve(spec, schema);
  if (schema.examples && schema.examples.length) return schema.examples[0];
  const body = {};
  for (const name of schema.required || []) {
    const property = resolve(spec, schema.properties[name]);
    body[name] = property.type === "integer" || property.type === "number" ? 0 : property.type === "array" ? [] : "";
  }
  return body;
}

function parameterRow(parameter) {
  const schema = parameter.schema || {};
  const isList = schema.type === "array";
  const input = isList ? el("textarea", { rows: "2" }) : el("input", { type: "text" });
  input.dataset.name = parameter.name;
  input.dataset.in = parameter.in;
  input.dataset.list = isList ? "1" : "";
  if (schema.default !== undefined && !isList) input.placeholder = String(schema.default);
  const hints = [parameter.in, schema.type || "", parameter.required ? "required" : "", isList ? "one per line" : ""];
  const label = el("div", {}, el("code", { text: parameter.name }), el("div", { class: "hint", text: hints.filter(Boolean).join(", ") }));
  const help = parameter.description ? el("div", { class: "hint", text: parameter.description }) : null;
  return el("div", { class: "param" }, label, el("div", {}, input, help));
}

async function send(path, method, form, output) {
  let url = path;
  const query = new URLSearchParams();
  for (const input of form.querySelectorAll("[data-name]")) {
    const value = input.value.trim();
    if (!value) continue;
    if (input.dataset.in === "path") url = url.replace("{" + input.dataset.name + "}", encodeURIComponent(value));
    else if (input.dataset.list) value.split("\n").filter(Boolean).forEach((v) => query.append(input.dataset.name, v.trim()));
    else query.append(input.dataset.name, value);
  }
  if ([...query].length) url += "?" + query;
  const headers = {};
  const key = document.getElementById("api-key").value.trim();
  if (key) headers["X-API-Key"] = key;
  const options = { method, headers };
  const body = form.querySelector("textarea.body");
  if (body) {
    headers["Content-Type"] = "application/json";
    options.body = body.value;
  }
  output.textContent = method + " " + url + " …";
  try {
    const response = await fetch(url, options);
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (error) { /* not JSON: show as is */ }
    const picked = ["content-type", "etag", "cache-control", "location", "retry-after", "x-request-id"]
      .filter((name) => response.headers.get(name))
      .map((name) => name + ": " + response.headers.get(name));
    output.textContent = [method + " " + url, response.status + " " + response.statusText, ...picked, "", shown].join("\n");
  } catch (error) {
    output.textContent = "request failed: " + error;
  }
}

function operationBlock(spec, path, method, operation) {
  const form = el("form");
  for (const parameter of operation.parameters || []) form.append(parameterRow(parameter));
  const content = operation.requestBody && operation.requestBody.content["application/json"];
  if (content) {
    const body = el("textarea", { class: "body", spellcheck: "false" });
    body.value = JSON.stringify(exampleBody(spec, content.schema), null, 2);
    form.append(el("div", { class: "hint", text: "JSON body" }), body);
  }
  const output = el("pre", { text: "" });
  const button = el("button", { type: "submit", text: "Send" });
  form.append(button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(path, method.toUpperCase(), form, output);
  });
  const needsKey = operation.security ? " (API key)" : "";
  const summary = el("summary", {},
    el("span", { class: "method " + method.toUpperCase(), text: method.toUpperCase() }),
    el("code", { text: path }), " — " + operation.summary + needsKey);
  const description = operation.description ? el("p", { text: operation.description }) : null;
  return el("details", {}, summary, el("div", { class: "op" }, description, form, output));
}

async function main() {
  const root = document.getElementById("operations");
  let spec;
  try {
    spec = await (await fetch(SPEC_URL)).json();
  } catch (error) {
    root.textContent = "could not load " + SPEC_URL + ": " + error;
    return;
  }
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("description").textContent = spec.info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const tag = (operation.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationBlock(spec, path, method, operation));
    }
  }
  root.replaceChildren();
  for (const [tag, blocks] of byTag) root.append(el("h2", { text: tag }), ...blocks);
}

main();
