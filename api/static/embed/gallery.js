/*
 * The demo gallery: browse and search the collection, open an artwork, see similar works and draft a
 * critique. Routed by the URL fragment: #/?q=...&classification=... (the collection) and #/artwork/<id>.
 * Builds the page from the JSON API with textContent only; the similar strip and the critique are the
 * drop-in widget (widget.js), rendered into this page.
 */
(function () {
  "use strict";

  var FILTERS = ["classification", "period", "culture"];
  var PAGE_SIZE = 24;
  var FACTS = [
    ["Date", "date_text"], ["Medium", "medium"], ["Classification", "classification"],
    ["Object type", "object_type"], ["Style", "style"], ["Period", "period"], ["Culture", "culture"],
  ];
  var METADATA_FACTS = [["Object number", "ObjectNumber"], ["Dimensions", "Dimensions"], ["Credit line", "CreditLine"]];

  var widget = window.CriticWidget;
  var parts = widget.parts;
  var make = parts.make;
  var byId = document.getElementById.bind(document);
  var listing = { params: null, offset: 0, request: 0 };
  var shownArtwork = null;

  function getJSON(path, params) {
    return parts.getJSON(widget.apiBase(), path, params, 20000);
  }

  // ------------------------------------------------------------------ routing

  function parseHash() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var cut = hash.indexOf("?");
    var path = cut < 0 ? hash : hash.slice(0, cut);
    var query = new URLSearchParams(cut < 0 ? "" : hash.slice(cut + 1));
    var artwork = /^\/artwork\/(.+)$/.exec(path);
    if (artwork) return { view: "artwork", id: decodeURIComponent(artwork[1]) };
    var params = {};
    ["q"].concat(FILTERS).forEach(function (name) {
      var value = (query.get(name) || "").trim();
      if (value) params[name] = value;
    });
    return { view: "browse", params: params };
  }

  function browseHash(params) {
    var query = new URLSearchParams();
    Object.keys(params).forEach(function (name) { if (params[name]) query.set(name, params[name]); });
    var text = query.toString();
    return "#/" + (text ? "?" + text : "");
  }

  function route() {
    var where = parseHash();
    byId("browse-view").hidden = where.view !== "browse";
    byId("artwork-view").hidden = where.view !== "artwork";
    if (where.view === "artwork") showArtwork(where.id);
    else showBrowse(where.params);
  }

  // ------------------------------------------------------------------ the collection

  function formParams() {
    var params = { q: byId("q").value.trim() };
    FILTERS.forEach(function (name) { params[name] = byId("f-" + name).value; });
    return params;
  }

  function go(params) {
    var hash = browseHash(params);
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function addOption(select, value, label) {
    var option = make("option", null, label);
    option.value = value;
    select.appendChild(option);
    return option;
  }

  function loadFacets() {
    return getJSON("/demo/facets").then(function (facets) {
      FILTERS.forEach(function (name) {
        var select = byId("f-" + name);
        var chosen = select.value;
        (facets[name] || []).forEach(function (entry) {
          addOption(select, entry.value, entry.value + " (" + entry.count + ")");
        });
        select.value = chosen;
      });
    }, function () { /* the filters still take values from the URL; search works without them */ });
  }

  function setFilterValue(name, value) {
    var select = byId("f-" + name);
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
    if (value && !known) addOption(select, value, value);
    select.value = value || "";
  }

  function card(record) {
    var li = make("li", "card");
    li.setAttribute("data-id", record.id);
    var link = make("a", "card-link");
    link.href = "#/artwork/" + encodeURIComponent(record.id);
    link.appendChild(parts.artImage(record.image_url));
    link.appendChild(make("span", "card-title", record.title || "Untitled"));
    var creators = (record.creators || []).join("; ");
    if (creators) link.appendChild(make("span", "card-meta", creators));
    var facts = [record.date_text, record.classification].filter(Boolean).join(" · ");
    if (facts) link.appendChild(make("span", "card-meta", facts));
    li.appendChild(link);
    return li;
  }

  function describeListing(params, page) {
    var filters = FILTERS.filter(function (name) { return params[name]; })
      .map(function (name) { return params[name]; });
    var within = filters.length ? " in " + filters.join(", ") : "";
    if (params.q) return "Closest matches for “" + params.q + "”" + within + ".";
    if (page.total === 0) return "No artworks" + within + ".";
    return page.total + " artwork" + (page.total === 1 ? "" : "s") + within + ".";
  }

  function fetchPage(append) {
    var request = ++listing.request;
    var query = Object.assign({ limit: PAGE_SIZE, offset: listing.offset }, listing.params);
    byId("status").textContent = append ? "Loading more…" : (listing.params.q ? "Searching…" : "Loading…");
    byId("results").setAttribute("aria-busy", "true");
    return getJSON("/api/v1/artworks", query).then(function (page) {
      if (request !== listing.request) return;
      var list = byId("results");
      if (!append) list.replaceChildren();
      page.results.forEach(function (record) { list.appendChild(card(record)); });
      list.removeAttribute("aria-busy");
      byId("status").textContent = page.results.length || append
        ? describeListing(listing.params, page) : "No artworks match; try other words or fewer filters.";
      listing.offset = page.next_offset;
      byId("more").hidden = page.next_offset === null || page.next_offset === undefined;
    }, function (error) {
      if (request !== listing.request) return;
      byId("results").removeAttribute("aria-busy");
      byId("more").hidden = true;
      byId("status").textContent = "The collection is unavailable right now (" + error.message + ").";
    });
  }

  function showBrowse(params) {
    document.title = (params.q ? params.q + " · " : "") + "critic · demo gallery";
    byId("q").value = params.q || "";
    FILTERS.forEach(function (name) { setFilterValue(name, params[name]); });
    listing.params = params;
    listing.offset = 0;
    shownArtwork = null;
    return fetchPage(false);
  }

  // ------------------------------------------------------------------ one artwork

  function fact(list, term, value) {
    if (!value) return;
    list.appendChild(make("dt", null, term));
    list.appendChild(make("dd", null, value));
  }

  function paragraphs(container, text) {
    String(text || "").split(/\n\s*\n/).forEach(function (part) {
      if (part.trim()) container.appendChild(make("p", null, part.trim()));
    });
  }

  function fillArtwork(record) {
    document.title = (record.title || "Untitled") + " · critic · demo gallery";
    byId("art-image").replaceChildren(parts.artImage(record.image_url, "artwork-frame"));
    byId("art-title").textContent = record.title || "Untitled";
    byId("art-creators").textContent = (record.creators || []).join("; ");
    var facts = byId("art-facts");
    facts.replaceChildren();
    FACTS.forEach(function (entry) { fact(facts, entry[0], record[entry[1]]); });
    fact(facts, "Keywords", (record.keywords || []).join(", "));
    var metadata = record.metadata || {};
    METADATA_FACTS.forEach(function (entry) {
      var value = metadata[entry[1]];
      if (typeof value === "string" || typeof value === "number") fact(facts, entry[0], String(value));
    });
    var description = byId("art-description");
    description.replaceChildren();
    paragraphs(description, record.description);
    var source = byId("art-source");
    var href = parts.safeUrl(record.url);
    source.hidden = !href;
    if (href) source.href = href;
  }

  function renderSimilar(id) {
    var strip = byId("similar");
    strip.setAttribute("data-critic-similar", id);
    strip.setAttribute("data-diversity", byId("diversity").value);
    return widget.render(strip);
  }

  function showArtwork(id) {
    if (shownArtwork === id) return Promise.resolve();
    shownArtwork = id;
    byId("critique-output").replaceChildren();
    byId("art-status").textContent = "Loading…";
    return getJSON("/api/v1/artworks/" + encodeURIComponent(id)).then(function (record) {
      if (shownArtwork !== id) return;
      byId("art-status").textContent = "";
      fillArtwork(record);
      byId("art-title").focus();
      renderSimilar(id);
    }, function (error) {
      if (shownArtwork !== id) return;
      shownArtwork = null;
      byId("art-status").textContent = error.status === 404
        ? "This artwork is not in the collection."
        : "The collection is unavailable right now (" + error.message + ").";
    });
  }

  function draftCritique(event) {
    event.preventDefault();
    if (!shownArtwork) return;
    var tone = byId("critique-form").querySelector("input[name=tone]:checked").value;
    var output = make("div");
    output.setAttribute("data-critic-critique", shownArtwork);
    output.setAttribute("data-tone", tone);
    byId("critique-output").replaceChildren(output);
    widget.render(output);
  }

  // ------------------------------------------------------------------ wiring

  byId("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    go(formParams());
  });
  FILTERS.forEach(function (name) {
    byId("f-" + name).addEventListener("change", function () { go(formParams()); });
  });
  byId("clear-filters").addEventListener("click", function () {
    FILTERS.forEach(function (name) { byId("f-" + name).value = ""; });
    go(formParams());
  });
  byId("more").addEventListener("click", function () { fetchPage(true); });
  byId("diversity").addEventListener("input", function () {
    byId("diversity-value").textContent = Number(byId("diversity").value).toFixed(1);
  });
  byId("diversity").addEventListener("change", function () {
    if (shownArtwork) renderSimilar(shownArtwork);
  });
  byId("critique-form").addEventListener("submit", draftCritique);
  window.addEventListener("hashchange", route);

  loadFacets().then(function () {
    var where = parseHash();
    if (where.view === "browse") FILTERS.forEach(function (name) { setFilterValue(name, where.params[name]); });
  });
  route();
})();
