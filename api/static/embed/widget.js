/*
 * critic widget: style-similar artworks and drafted critiques on any page.
 *
 *   <script src="https://CRITIC-HOST/widget.js" async></script>
 *   <div data-critic-similar="ARTWORK_ID" data-k="6"></div>
 *   <div data-critic-critique="ARTWORK_ID" data-tone="label"></div>
 *
 * Options (data- attributes on the element): k (1-24), diversity (0-1), max-per-creator (1-24, default 2:
 * at most that many works by any one artist), other-creators (present: none by the artwork's own creators),
 * link (a URL template with {id}
 * for where an item links; default: the record's own page), target (_blank, _top...), heading (the
 * strip's caption; empty for none), tone (label, critique, scholarly), seed; critic-api (the API's base
 * URL, also accepted on the script tag; default: where this script came from); critic-key (a read key,
 * also accepted on the script tag, for a server whose reads need one; sent as X-API-Key).
 *
 * Every string from the catalog is set as text (createElement/textContent), never parsed as HTML, and
 * only http(s) URLs become links or images. When the API cannot answer, the element shows one short line
 * and the host page carries on.
 */
(function () {
  "use strict";

  if (window.CriticWidget) {  // pasted twice: the first copy serves
    window.CriticWidget.scan(document);
    return;
  }

  var SIMILAR = "data-critic-similar";
  var CRITIQUE = "data-critic-critique";
  var TONES = ["label", "critique", "scholarly"];
  var SIMILAR_TIMEOUT_MS = 10000;
  var CRITIQUE_TIMEOUT_MS = 60000;

  var script = document.currentScript || findOwnScript();
  var assetBase = scriptHome(script);  // where widget.js and its stylesheet are served
  var apiDefault = script && script.getAttribute("data-critic-api")
    ? trimSlash(new URL(script.getAttribute("data-critic-api"), document.baseURI).href) : assetBase;
  var generations = new WeakMap();  // element -> number of its latest render, to drop stale answers
  var rendered = new WeakSet();

  function findOwnScript() {
    var scripts = document.querySelectorAll("script[src]");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  function trimSlash(url) {
    return url.replace(/\/+$/, "");
  }

  function scriptHome(tag) {
    if (!tag || !tag.src) return trimSlash(location.origin);
    var url = new URL(tag.src, document.baseURI);
    return trimSlash(url.origin + url.pathname.replace(/\/widget\.js$/, ""));
  }

  function apiBase(el) {
    var own = el.getAttribute("data-critic-api");
    return own ? trimSlash(new URL(own, document.baseURI).href) : apiDefault;
  }

  function apiKey(el) {
    return el.getAttribute("data-critic-key") || (script && script.getAttribute("data-critic-key")) || null;
  }

  /** An absolute http(s) URL, or null for anything else (javascript:, data:, garbage). */
  function safeUrl(value, relativeTo) {
    if (typeof value !== "string" || !value.trim()) return null;
    try {
      var url = new URL(value.trim(), relativeTo || document.baseURI);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clampNumber(raw, low, high, fallback) {
    var value = Number(raw);
    if (raw === null || raw === undefined || raw === "" || !isFinite(value)) return fallback;
    return Math.min(high, Math.max(low, value));
  }

  function ensureStylesheet() {
    var href = assetBase + "/assets/widget.css";
    var links = document.querySelectorAll("link[rel~=stylesheet]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].href === href) return;
    }
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    (document.head || document.documentElement).appendChild(link);
  }

  function ApiError(message, status) {
    this.message = message;
    this.status = status;
  }

  /** GET base + path with query params; resolves to the JSON body, rejects with an ApiError. */
  function getJSON(base, path, params, timeoutMs, key) {
    var url = new URL(base + path);
    Object.keys(params || {}).forEach(function (name) {
      if (params[name] !== undefined && params[name] !== null) url.searchParams.set(name, params[name]);
    });
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, timeoutMs || SIMILAR_TIMEOUT_MS) : null;
    return fetch(url.href, {
      mode: "cors",
      credentials: "omit",
      headers: key ? { Accept: "application/json", "X-API-Key": key } : { Accept: "application/json" },
      signal: controller ? controller.signal : undefined,
    })
      .then(
        function (response) {
          return response.json().then(
            function (body) { return { response: response, body: body }; },
            function () { return { response: response, body: null }; }
          );
        },
        function () {
          throw new ApiError("the service could not be reached", 0);
        }
      )
      .then(function (answer) {
        if (!answer.response.ok || answer.body === null) {
          var detail = answer.body && answer.body.detail ? answer.body.detail : "HTTP " + answer.response.status;
          throw new ApiError(detail, answer.response.status);
        }
        return answer.body;
      })
      .finally(function () {
        if (timer) clearTimeout(timer);
      });
  }

  /** A frame holding the image at url, which gives way to the placeholder when missing or broken. */
  function artImage(url, className) {
    var frame = make("span", "critic-w-frame" + (className ? " " + className : ""));
    var src = safeUrl(url);
    if (!src) {
      frame.classList.add("critic-w-noimage");
      return frame;
    }
    var img = document.createElement("img");
    img.alt = "";
    img.loading = "lazy";
    img.decoding = "async";
    img.referrerPolicy = "no-referrer";
    img.addEventListener("load", function () { frame.classList.add("critic-w-loaded"); });
    img.addEventListener("error", function () {
      img.remove();
      frame.classList.add("critic-w-noimage");
    });
    img.src = src;
    frame.appendChild(img);
    return frame;
  }

  function startRender(el) {
    var generation = (generations.get(el) || 0) + 1;
    generations.set(el, generation);
    rendered.add(el);
    el.setAttribute("aria-busy", "true");
    return function isCurrent() { return generations.get(el) === generation; };
  }

  function finish(el, children) {
    el.replaceChildren.apply(el, children);
    el.removeAttribute("aria-busy");
  }

  function failure(el, message, error) {
    el.classList.add("critic-w-failed");
    finish(el, [make("p", "critic-w-message", message)]);
    if (window.console && error) console.warn("critic widget:", error.message || error);
  }

  // ------------------------------------------------------------------ similar artworks

  /** Results lacking image_url or url (older servers) get them from their records, best effort. */
  function withRecords(base, results, key) {
    return Promise.all(results.map(function (item) {
      if ("image_url" in item && "url" in item) return item;
      return getJSON(base, "/api/v1/artworks/" + encodeURIComponent(item.id), null, SIMILAR_TIMEOUT_MS, key).then(
        function (record) { return Object.assign({}, item, { image_url: record.image_url, url: record.url }); },
        function () { return item; }
      );
    }));
  }

  function itemLink(el, base, item) {
    var template = el.getAttribute("data-link");
    if (template) return safeUrl(template.split("{id}").join(encodeURIComponent(item.id)));
    return safeUrl(item.url) || safeUrl(base + "/#/artwork/" + encodeURIComponent(item.id));
  }

  function similarItem(el, base, item) {
    var li = make("li", "critic-w-item");
    li.setAttribute("data-id", item.id);
    var href = itemLink(el, base, item);
    var box = make(href ? "a" : "div", "critic-w-link");
    if (href) {
      box.href = href;
      var target = el.getAttribute("data-target");
      if (target) {
        box.target = target;
        box.rel = "noopener noreferrer";
      }
    }
    var score = typeof item.score === "number" ? item.score.toFixed(2) : null;
    var why = Array.isArray(item.why) ? item.why.filter(function (w) { return typeof w === "string"; }) : [];
    if (score || why.length) box.title = (score ? "Similarity " + score : "") + (why.length ? "\n" + why.join("\n") : "");
    box.appendChild(artImage(item.image_url));
    box.appendChild(make("span", "critic-w-title", item.title || "Untitled"));
    var creators = Array.isArray(item.creators) ? item.creators.join("; ") : "";
    if (creators) box.appendChild(make("span", "critic-w-creator", creators));
    if (score) box.appendChild(make("span", "critic-w-score", "Similarity " + score));
    li.appendChild(box);
    return li;
  }

  function renderSimilar(el) {
    var isCurrent = startRender(el);
    var base = apiBase(el);
    var id = el.getAttribute(SIMILAR);
    el.classList.add("critic-w", "critic-w-similar");
    el.classList.remove("critic-w-failed");
    var k = Math.round(clampNumber(el.getAttribute("data-k"), 1, 24, 6));
    var diversity = clampNumber(el.getAttribute("data-diversity"), 0, 1, 0);
    // A visitor wants "more like this", not the same artist's other works: at most two per creator
    // unless the page says otherwise (data-max-per-creator, 1-24; data-other-creators for none by the same).
    var perCreator = Math.round(clampNumber(el.getAttribute("data-max-per-creator"), 1, 24, 2));
    var params = { k: k, max_per_creator: perCreator };
    if (diversity > 0) params.diversity = diversity;
    if (el.hasAttribute("data-other-creators")) params.exclude_same_creator = "true";
    var key = apiKey(el);
    return getJSON(base, "/api/v1/artworks/" + encodeURIComponent(id) + "/similar", params, SIMILAR_TIMEOUT_MS, key)
      .then(function (answer) { return withRecords(base, answer.results || [], key); })
      .then(function (results) {
        if (!isCurrent()) return;
        var children = [];
        var heading = el.hasAttribute("data-heading") ? el.getAttribute("data-heading") : "Similar artworks";
        if (heading) children.push(make("p", "critic-w-heading", heading));
        if (!results.length) {
          children.push(make("p", "critic-w-message", "No similar artworks found."));
        } else {
          var list = make("ul", "critic-w-strip");
          list.setAttribute("aria-label", heading || "Similar artworks");
          results.forEach(function (item) { list.appendChild(similarItem(el, base, item)); });
          children.push(list);
        }
        finish(el, children);
      })
      .catch(function (error) {
        if (!isCurrent()) return;
        var message = error && error.status === 404 ? "This artwork is not in the collection."
          : "Similar artworks are unavailable right now.";
        failure(el, message, error);
      });
  }

  // ------------------------------------------------------------------ drafted critiques

  function paragraphs(text) {
    return String(text || "").split(/\n\s*\n/).map(function (part) { return part.trim(); })
      .filter(Boolean).map(function (part) { return make("p", "critic-w-text", part); });
  }

  function evidenceNote(evidence) {
    if (!evidence || typeof evidence !== "object") return null;
    var parts = [];
    if (Array.isArray(evidence.fields) && evidence.fields.length) {
      parts.push("the record's " + evidence.fields.filter(function (f) { return typeof f === "string"; })
        .map(function (f) { return f.replace(/_/g, " "); }).join(", "));
    }
    if (Array.isArray(evidence.neighbours) && evidence.neighbours.length) {
      var n = evidence.neighbours.length;
      parts.push(n + " similar work" + (n === 1 ? "" : "s") + " in the collection");
    }
    return parts.length ? make("p", "critic-w-evidence", "Based on " + parts.join(" and ") + ".") : null;
  }

  function renderCritique(el) {
    var isCurrent = startRender(el);
    var base = apiBase(el);
    var id = el.getAttribute(CRITIQUE);
    var tone = el.getAttribute("data-tone");
    if (TONES.indexOf(tone) < 0) tone = "label";
    var params = { tone: tone };
    var seed = el.getAttribute("data-seed");
    if (seed && /^\d+$/.test(seed)) params.seed = seed;
    el.classList.add("critic-w", "critic-w-critique");
    el.classList.remove("critic-w-failed");
    finish(el, [make("p", "critic-w-message", "Drafting…")]);
    el.setAttribute("aria-busy", "true");
    var path = "/api/v1/artworks/" + encodeURIComponent(id) + "/critique";
    return getJSON(base, path, params, CRITIQUE_TIMEOUT_MS, apiKey(el))
      .then(function (critique) {
        if (!isCurrent()) return;
        var badge = make("p", "critic-w-draft");
        badge.appendChild(make("strong", "critic-w-draft-mark", "Draft"));
        badge.appendChild(document.createTextNode(" machine-written from the catalog record; check before use"));
        var children = [badge];
        var sections = Array.isArray(critique.sections) ? critique.sections : [];
        if (sections.length) {
          sections.forEach(function (section) {
            if (!section || !section.text) return;
            var part = make("section", "critic-w-section");
            if (section.title) part.appendChild(make("p", "critic-w-section-title", section.title));
            paragraphs(section.text).forEach(function (p) { part.appendChild(p); });
            children.push(part);
          });
        } else {
          children = children.concat(paragraphs(critique.text));
        }
        var note = evidenceNote(critique.evidence);
        if (note) children.push(note);
        finish(el, children);
      })
      .catch(function (error) {
        if (!isCurrent()) return;
        failure(el, "A drafted critique is unavailable right now.", error);
      });
  }

  // ------------------------------------------------------------------ wiring

  /** (Re)render one widget element now; returns a promise settled when it is drawn. */
  function render(el) {
    if (el.hasAttribute(SIMILAR)) return renderSimilar(el);
    if (el.hasAttribute(CRITIQUE)) return renderCritique(el);
    return Promise.resolve();
  }

  /** Render the widget elements in root (and root itself) not rendered yet. */
  function scan(root) {
    var selector = "[" + SIMILAR + "],[" + CRITIQUE + "]";
    var found = root.querySelectorAll ? Array.prototype.slice.call(root.querySelectorAll(selector)) : [];
    if (root.matches && root.matches(selector)) found.unshift(root);
    found.forEach(function (el) { if (!rendered.has(el)) render(el); });
  }

  function start() {
    ensureStylesheet();
    scan(document);
    // Pages that add widget elements later (CMS blocks, single-page apps) get them rendered too.
    new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) { if (node.nodeType === 1) scan(node); });
      });
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  window.CriticWidget = {
    render: render,
    scan: scan,
    apiBase: function () { return apiDefault; },
    parts: { artImage: artImage, getJSON: getJSON, safeUrl: safeUrl, make: make },
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
