/*
 * recsys-widget.js: "you may also like" cards for a shop's product page. No dependencies.
 *
 * Embed:
 *   <div data-recsys-product="P00042"></div>
 *   <script src="https://api.example/widget/recsys-widget.js" data-api="https://api.example" async></script>
 *
 * Script attributes: data-api (API base URL; default: where this script came from), data-token (a short-lived
 * shopper token the shop's backend issued for this shopper: POST /v1/tokens with the server key, or any HS256 JWT
 * library; never the server key itself), data-link (card link template, "{id}" is replaced; default "#"),
 * data-currency (ISO code for price formatting).
 * Container attributes: data-recsys-product (required), data-recsys-k (cards, default 4),
 * data-recsys-title (heading, default "You may also like").
 *
 * Events (POST /v1/events, only with data-token, sent as `Authorization: Bearer`) are written for the token's
 * shopper (its "sub"; its "sid" when it names a session, else a session id that is new after 30 min idle): a "view"
 * of the page's product when the widget is shown, a "click" on a card (stored as a view of the clicked product),
 * each with a random event_id so a retried delivery is stored once. Each product's view is reported once per
 * session. Without a token the widget shows recommendations (for an anonymous browser id) and writes nothing.
 * When the API is down the widget renders nothing and logs a single console warning.
 *
 * Ask box (opt-in; POST /v1/ask): a question field, an optional photo and an Ask button; the answer, the matching
 * products (with the request words each satisfies as tags), "closest matches" when nothing matched exactly, and
 * what could not be checked. Either
 *   <div data-recsys-ask-product="P00042"></div>          (its own box, about that product)
 *   <div data-recsys-ask-product=""></div>                (a shop-wide box: no product on screen)
 *   <div data-recsys-product="P00042" data-recsys-ask="true"></div>   (the box above that container's cards)
 * Ask attributes (on the container): data-recsys-ask-title (heading, default "Ask about this product"),
 * data-recsys-ask-k (products per answer; default: the API's), data-recsys-ask-max-image-bytes (client-side photo
 * check, default 10 MB; the API's limit is the one that counts). A follow-up question carries the conversation
 * the previous answer returned (and the chosen photo); "New question" starts over. Errors from the API are shown
 * inline with its message.
 */
(function () {
  "use strict";

  var SESSION_IDLE_MS = 30 * 60 * 1000;
  var script = document.currentScript || document.querySelector('script[src*="recsys-widget"]');
  var cfg = script ? script.dataset : {};
  var api = (cfg.api || (script && script.src ? new URL(script.src, location.href).origin : "")).replace(/\/$/, "");
  var warned = false;

  function warn(message) {
    if (!warned && window.console) {
      warned = true;
      console.warn("recsys widget: " + message);
    }
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function stored(storage, key, make) {
    try {
      var value = storage.getItem(key);
      if (!value) {
        value = make();
        storage.setItem(key, value);
      }
      return value;
    } catch (e) {
      return make(); // storage blocked (privacy mode): an id per page view still works
    }
  }

  function tokenClaims(token) {
    // the JWT's payload (its middle part) names the shopper; the API checks the signature, not the widget
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch (e) {
      return {};
    }
  }

  var token = cfg.token || "";
  var claims = token ? tokenClaims(token) : {};
  var userId = typeof claims.sub === "string" && claims.sub ? claims.sub
    : stored(window.localStorage, "recsys_uid", function () { return "anon-" + randomId(); });

  function sessionId() {
    var now = Date.now();
    try {
      var sid = localStorage.getItem("recsys_sid");
      var last = Number(localStorage.getItem("recsys_sid_at") || 0);
      if (!sid || now - last > SESSION_IDLE_MS) sid = "s-" + randomId();
      localStorage.setItem("recsys_sid", sid);
      localStorage.setItem("recsys_sid_at", String(now));
      return sid;
    } catch (e) {
      return "s-" + userId;
    }
  }

  var session = typeof claims.sid === "string" && claims.sid ? claims.sid : sessionId();

  function alreadyViewed(productId) {
    var key = "recsys_viewed:" + session + ":" + productId;
    try {
      if (sessionStorage.getItem(key)) return true;
      sessionStorage.setItem(key, "1");
    } catch (e) { /* storage blocked: report every time */ }
    return false;
  }

  function send(kind, productId) {
    if (!token) return Promise.resolve(); // no shopper token: the widget writes nothing
    var headers = { "Content-Type": "application/json", "Authorization": "Bearer " + token };
    var body = JSON.stringify({ events: [{ user_id: userId, session_id: session, product_id: productId,
      event: kind, timestamp: new Date().toISOString(), event_id: randomId() }] });
    return fetch(api + "/v1/events", { method: "POST", headers: headers, body: body, keepalive: true,
      credentials: "omit" }).then(function (r) {
      if (!r.ok && r.status !== 207) warn("events not recorded (HTTP " + r.status + ")");
    }).catch(function () { warn("events not recorded (API unreachable)"); });
  }

  function formatPrice(price) {
    if (price === null || price === undefined) return "";
    if (cfg.currency && window.Intl) {
      try {
        return new Intl.NumberFormat(undefined, { style: "currency", currency: cfg.currency }).format(price);
      } catch (e) { /* unknown currency code: plain number below */ }
    }
    return Number(price).toFixed(2);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function injectStyle() {
    if (document.getElementById("recsys-widget-style")) return;
    var style = el("style");
    style.id = "recsys-widget-style";
    style.textContent =
      ".recsys-widget{font-family:system-ui,sans-serif;margin:1.5em 0}" +
      ".recsys-widget h2{font-size:1.1em;margin:0 0 .6em}" +
      ".recsys-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}" +
      ".recsys-card{display:block;border:1px solid #ddd;border-radius:8px;padding:8px;color:inherit;" +
      "text-decoration:none;background:#fff}" +
      ".recsys-card:hover{border-color:#888}" +
      ".recsys-card img{width:100%;aspect-ratio:1;object-fit:cover;border-radius:4px;background:#f3f3f3}" +
      ".recsys-title{font-size:.9em;font-weight:600;margin:.4em 0 .2em}" +
      ".recsys-price{font-size:.9em}" +
      ".recsys-why{font-size:.75em;color:#555;margin-top:.3em}" +
      ".recsys-ask{border:1px solid #ddd;border-radius:8px;padding:12px 14px;background:#fafafa}" +
      ".recsys-ask form{display:flex;flex-wrap:wrap;gap:8px 12px;align-items:flex-end}" +
      ".recsys-ask label{display:flex;flex-direction:column;font-size:.8em;color:#444;gap:3px}" +
      ".recsys-ask .recsys-q{flex:1 1 260px}" +
      ".recsys-ask input[type=text]{font:inherit;font-size:1rem;padding:6px 8px;border:1px solid #bbb;" +
      "border-radius:6px}" +
      ".recsys-ask button{font:inherit;padding:7px 14px;border-radius:6px;border:1px solid #333;cursor:pointer;" +
      "background:#222;color:#fff}" +
      ".recsys-ask button.recsys-reset{background:#fff;color:#222}" +
      ".recsys-ask button[disabled]{opacity:.6;cursor:progress}" +
      ".recsys-alert{margin:.8em 0 0;padding:8px 10px;border-radius:6px;background:#fdecea;color:#8a1c12;" +
      "border:1px solid #f5c2bc}" +
      ".recsys-ask input[type=file]{font-size:.85rem;padding:6px 0}" +
      ".recsys-asked{font-size:.85em;color:#555;margin:1em 0 0;font-style:italic}" +
      ".recsys-answer{margin:.3em 0 .8em}" +
      ".recsys-answer p{margin:.3em 0}" +
      ".recsys-cite{font-size:.8em;margin-left:.4em;white-space:nowrap}" +
      ".recsys-ask h3{font-size:.95em;margin:1em 0 .5em}" +
      ".recsys-stock{font-size:.75em;color:#2e7d32}" +
      ".recsys-stock.recsys-out{color:#b00020}" +
      ".recsys-tags{display:flex;flex-wrap:wrap;gap:4px;margin-top:.3em}" +
      ".recsys-tag{font-size:.7em;background:#eef3ff;color:#23408e;border-radius:999px;padding:1px 7px}" +
      ".recsys-note{font-size:.8em;color:#666;margin-top:.8em}" +
      ".recsys-busy{opacity:.5}";
    document.head.appendChild(style);
  }

  function productLink(productId) {
    return (cfg.link || "#").replace("{id}", encodeURIComponent(productId));
  }

  function productLinkNode(className, productId, text) {
    var link = el("a", className, text);
    link.href = productLink(productId);
    link.setAttribute("data-product-id", productId);
    link.addEventListener("click", function () {
      alreadyViewed(productId); // the click is that product's view: its own page will not report it again
      send("click", productId);
    });
    return link;
  }

  function cardBase(item) {
    var link = productLinkNode("recsys-card", item.product_id);
    if (item.image_url) {
      var img = el("img");
      img.src = new URL(item.image_url, api ? api + "/" : location.href).href; // relative: the API's, not the shop's
      img.alt = item.title || "";
      img.loading = "lazy";
      link.appendChild(img);
    }
    link.appendChild(el("div", "recsys-title", item.title || item.product_id));
    link.appendChild(el("div", "recsys-price", formatPrice(item.price)));
    return link;
  }

  function card(item) {
    var link = cardBase(item);
    if (item.explanation && item.explanation.text) link.appendChild(el("div", "recsys-why", item.explanation.text));
    return link;
  }

  function recsTarget(container) {
    var shared = container.getAttribute("data-recsys-ask") === "true" ||
      container.hasAttribute("data-recsys-ask-product");
    if (!shared) return container;
    var slot = container.querySelector(":scope > .recsys-recs-slot"); // the ask box shares this container
    if (!slot) container.appendChild(slot = el("div", "recsys-recs-slot"));
    return slot;
  }

  function render(container, productId, items) {
    if (!items.length) return;
    injectStyle();
    var box = el("div", "recsys-widget");
    box.appendChild(el("h2", null, container.getAttribute("data-recsys-title") || "You may also like"));
    var cards = el("div", "recsys-cards");
    items.forEach(function (item) { cards.appendChild(card(item)); });
    box.appendChild(cards);
    var target = recsTarget(container);
    target.textContent = "";
    target.appendChild(box);
    if (!alreadyViewed(productId)) send("view", productId);
  }

  function load(container) {
    var productId = container.getAttribute("data-recsys-product");
    if (!productId) return;
    var params = new URLSearchParams({ k: container.getAttribute("data-recsys-k") || "4", user_id: userId,
      session_id: session, explain: "template" });
    var url = api + "/v1/products/" + encodeURIComponent(productId) + "/recommendations?" + params.toString();
    fetch(url, { credentials: "omit" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      render(container, productId, body.items || []);
    }).catch(function (e) {
      warn("recommendations unavailable (" + e.message + ")");
    });
  }

  /* ---- ask box ---- */

  var PHOTO_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
  var DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024;
  var ALTERNATIVES_HEADING = "Closest matches (not exactly what you asked)";
  var NETWORK_MESSAGE = "Sorry, the shop assistant could not be reached. Check your connection and try again.";
  var askCount = 0;

  function field(labelText, input, className) {
    var label = el("label", className);
    label.appendChild(document.createTextNode(labelText));
    label.appendChild(input);
    return label;
  }

  function input(type, name) {
    var node = el("input");
    node.type = type;
    node.name = name;
    node.id = "recsys-ask-" + askCount + "-" + name;
    return node;
  }

  function button(type, className, text) {
    var node = el("button", className, text);
    node.type = type;
    return node;
  }

  function askCard(item) {
    var link = cardBase(item);
    var stock = el("div", "recsys-stock", item.in_stock === false ? "Out of stock" : "In stock");
    if (item.in_stock === false) stock.className += " recsys-out";
    link.appendChild(stock);
    var labels = item.satisfies || [];
    if (labels.length) {
      var tags = el("div", "recsys-tags");
      labels.forEach(function (label) { tags.appendChild(el("span", "recsys-tag", String(label))); });
      link.appendChild(tags);
    }
    return link;
  }

  function cardsBlock(className, items) {
    var cards = el("div", "recsys-cards " + className);
    items.forEach(function (item) { cards.appendChild(askCard(item)); });
    return cards;
  }

  function titlesById(body) {
    var titles = Object.create(null); // keys are product ids from the API: no inherited names
    [body.viewed].concat(body.products || [], body.alternatives || []).forEach(function (item) {
      if (item && item.product_id) titles[item.product_id] = item.title || item.product_id;
    });
    return titles;
  }

  function sentenceNode(sentence, titles) {
    var p = el("p", "recsys-sentence", sentence.text || "");
    (sentence.product_ids || []).forEach(function (id) {
      p.appendChild(productLinkNode("recsys-cite", id, "\u2192 " + (titles[id] || id)));
    });
    return p;
  }

  function unmetNote(unmet) {
    var parts = unmet.map(function (u) {
      return "\u201c" + (u.words || "") + "\u201d" + (u.reason ? " (" + u.reason + ")" : "");
    });
    return el("p", "recsys-note", "Not checked: " + parts.join("; "));
  }

  function renderAnswer(result, body, question) {
    result.textContent = "";
    result.appendChild(el("p", "recsys-asked", question ? "You asked: " + question : "You asked about your photo"));
    var answer = el("div", "recsys-answer");
    var titles = titlesById(body);
    var sentences = (body.answer && body.answer.sentences) || [];
    if (sentences.length) sentences.forEach(function (s) { answer.appendChild(sentenceNode(s, titles)); });
    else if (body.answer && body.answer.text) answer.appendChild(el("p", "recsys-sentence", body.answer.text));
    result.appendChild(answer);
    if ((body.products || []).length) result.appendChild(cardsBlock("recsys-matches", body.products));
    if ((body.alternatives || []).length) {
      result.appendChild(el("h3", "recsys-alt-heading", ALTERNATIVES_HEADING));
      result.appendChild(cardsBlock("recsys-alternatives", body.alternatives));
    }
    if ((body.unmet || []).length) result.appendChild(unmetNote(body.unmet));
  }

  function formatBytes(n) {
    if (n >= 1024 * 1024) return Math.floor(n / (1024 * 1024) * 10) / 10 + " MB";
    return n >= 1024 ? Math.floor(n / 1024) + " KB" : n + " bytes";
  }

  function photoProblem(file, maxBytes) {
    if (file.type && PHOTO_TYPES.indexOf(file.type) < 0) return "Choose a PNG, JPEG, WebP or GIF photo.";
    if (file.size > maxBytes) return "That photo is too large (the limit is " + formatBytes(maxBytes) + ").";
    return null;
  }

  function errorMessage(response) {
    return response.json().then(function (body) {
      var message = body && body.error && body.error.message;
      return message ? String(message) : "Sorry, something went wrong (HTTP " + response.status + ").";
    }, function () {
      return "Sorry, the shop assistant is unavailable right now (HTTP " + response.status + ").";
    });
  }

  function postAsk(form) {
    return fetch(api + "/v1/ask", { method: "POST", body: form, credentials: "omit" }).then(function (r) {
      if (r.ok) return r.json();
      return errorMessage(r).then(function (message) { throw { shown: message }; });
    }, function () {
      throw { shown: NETWORK_MESSAGE };
    });
  }

  function firstPlaceholder(productId) {
    return productId ? "e.g. does it come in navy?" : "e.g. white sneakers under 80";
  }

  function buildAskBox(container, productId) {
    askCount += 1;
    var box = el("section", "recsys-widget recsys-ask");
    var heading = el("h2", null, container.getAttribute("data-recsys-ask-title") ||
      (productId ? "Ask about this product" : "Ask the shop"));
    heading.id = "recsys-ask-" + askCount + "-heading";
    box.setAttribute("aria-labelledby", heading.id);
    var form = el("form");
    form.noValidate = true;
    var question = input("text", "question");
    question.autocomplete = "off";
    question.placeholder = firstPlaceholder(productId);
    var photo = input("file", "image");
    photo.accept = PHOTO_TYPES.join(",");
    var submit = button("submit", "recsys-submit", "Ask");
    var reset = button("button", "recsys-reset", "New question");
    reset.hidden = true;
    form.appendChild(field("Your question", question, "recsys-q"));
    form.appendChild(field("Photo (optional)", photo, "recsys-photo"));
    form.appendChild(submit);
    form.appendChild(reset);
    var alert = el("div", "recsys-alert");
    alert.setAttribute("role", "alert");
    alert.hidden = true;
    var result = el("div", "recsys-result");
    result.setAttribute("aria-live", "polite");
    result.setAttribute("aria-busy", "false");
    [heading, form, alert, result].forEach(function (node) { box.appendChild(node); });
    return { box: box, form: form, question: question, photo: photo, submit: submit, reset: reset, alert: alert,
      result: result };
  }

  function askFormData(ui, productId, conversation, k) {
    var data = new FormData();
    data.append("question", ui.question.value);
    if (productId) data.append("product_id", productId);
    if (k) data.append("k", k);
    if (conversation) data.append("conversation", JSON.stringify(conversation));
    if (ui.photo.files && ui.photo.files[0]) data.append("image", ui.photo.files[0]);
    return data;
  }

  function wireAsk(container, ui, productId) {
    var conversation = null;
    var pending = 0;
    var maxBytes = Number(container.getAttribute("data-recsys-ask-max-image-bytes")) || DEFAULT_MAX_IMAGE_BYTES;
    var k = container.getAttribute("data-recsys-ask-k") || "";

    function showError(message) {
      ui.alert.textContent = message;
      ui.alert.hidden = !message;
    }

    function busy(on) {
      ui.submit.disabled = on;
      ui.submit.textContent = on ? "Asking\u2026" : "Ask";
      ui.result.setAttribute("aria-busy", on ? "true" : "false");
      ui.result.classList.toggle("recsys-busy", on);
    }

    ui.form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (ui.submit.disabled) return;
      var file = ui.photo.files && ui.photo.files[0];
      var problem = file ? photoProblem(file, maxBytes) : null;
      if (!problem && !ui.question.value.trim() && !file) problem = "Type a question or choose a photo.";
      if (problem) return showError(problem);
      showError("");
      busy(true);
      var mine = ++pending;
      var asked = ui.question.value.trim();
      postAsk(askFormData(ui, productId, conversation, k)).then(function (body) {
        if (mine !== pending) return; // "New question" was pressed meanwhile
        conversation = body.conversation || null;
        renderAnswer(ui.result, body, asked);
        ui.reset.hidden = false;
        ui.question.value = "";
        ui.question.placeholder = "Ask a follow-up, e.g. and in black?";
      }).catch(function (e) {
        if (mine !== pending) return;
        showError(e && e.shown ? e.shown : "Sorry, something went wrong. Please try again.");
      }).then(function () {
        if (mine !== pending) return;
        var lost = document.activeElement === ui.submit || document.activeElement === document.body;
        busy(false);
        if (lost) ui.question.focus(); // the disabled Ask button dropped the keyboard focus
      });
    });

    ui.reset.addEventListener("click", function () {
      pending += 1;
      conversation = null;
      ui.form.reset();
      ui.result.textContent = "";
      showError("");
      busy(false);
      ui.reset.hidden = true;
      ui.question.placeholder = firstPlaceholder(productId);
      ui.question.focus();
    });
  }

  function startAsk(container) {
    var own = container.hasAttribute("data-recsys-ask-product");
    var productId = (own ? container.getAttribute("data-recsys-ask-product")
      : container.getAttribute("data-recsys-product")) || "";
    productId = productId.trim();
    injectStyle();
    var ui = buildAskBox(container, productId);
    wireAsk(container, ui, productId);
    container.textContent = ""; // with data-recsys-ask="true" the cards follow in their own slot (recsTarget)
    container.appendChild(ui.box);
  }

  function start() {
    var asks = document.querySelectorAll('[data-recsys-ask-product], [data-recsys-product][data-recsys-ask="true"]');
    for (var j = 0; j < asks.length; j++) startAsk(asks[j]);
    var nodes = document.querySelectorAll("[data-recsys-product]");
    for (var i = 0; i < nodes.length; i++) load(nodes[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
