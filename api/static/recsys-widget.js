/*
 * recsys-widget.js: "you may also like" cards for a shop's product page. No dependencies.
 *
 * Embed:
 *   <div data-recsys-product="P00042"></div>
 *   <script src="https://api.example/widget/recsys-widget.js" data-api="https://api.example" async></script>
 *
 * Script attributes: data-api (API base URL; default: where this script came from), data-api-key (sent as
 * X-API-Key with events, when the API requires one), data-link (card link template, "{id}" is replaced;
 * default "#"), data-currency (ISO code for price formatting).
 * Container attributes: data-recsys-product (required), data-recsys-k (cards, default 4),
 * data-recsys-title (heading, default "You may also like").
 *
 * Events (POST /v1/events) carry an anonymous browser id (localStorage) and a session id (new after 30 min
 * idle): a "view" of the page's product when the widget is shown, a "click" on a card (the API stores it as
 * a view of the clicked product). Each product's view is reported once per session.
 * When the API is down the widget renders nothing and logs a single console warning.
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

  var userId = stored(window.localStorage, "recsys_uid", function () { return "anon-" + randomId(); });

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

  var session = sessionId();

  function alreadyViewed(productId) {
    var key = "recsys_viewed:" + session + ":" + productId;
    try {
      if (sessionStorage.getItem(key)) return true;
      sessionStorage.setItem(key, "1");
    } catch (e) { /* storage blocked: report every time */ }
    return false;
  }

  function send(kind, productId) {
    var headers = { "Content-Type": "application/json" };
    if (cfg.apiKey) headers["X-API-Key"] = cfg.apiKey;
    var body = JSON.stringify({ events: [{ user_id: userId, session_id: session, product_id: productId,
      event: kind, timestamp: new Date().toISOString() }] });
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
      ".recsys-why{font-size:.75em;color:#555;margin-top:.3em}";
    document.head.appendChild(style);
  }

  function card(item) {
    var link = el("a", "recsys-card");
    link.href = (cfg.link || "#").replace("{id}", encodeURIComponent(item.product_id));
    link.setAttribute("data-product-id", item.product_id);
    if (item.image_url) {
      var img = el("img");
      img.src = item.image_url;
      img.alt = item.title || "";
      img.loading = "lazy";
      link.appendChild(img);
    }
    link.appendChild(el("div", "recsys-title", item.title || item.product_id));
    link.appendChild(el("div", "recsys-price", formatPrice(item.price)));
    if (item.explanation && item.explanation.text) link.appendChild(el("div", "recsys-why", item.explanation.text));
    link.addEventListener("click", function () {
      alreadyViewed(item.product_id); // the click is that product's view: its own page will not report it again
      send("click", item.product_id);
    });
    return link;
  }

  function render(container, productId, items) {
    if (!items.length) return;
    injectStyle();
    var box = el("div", "recsys-widget");
    box.appendChild(el("h2", null, container.getAttribute("data-recsys-title") || "You may also like"));
    var cards = el("div", "recsys-cards");
    items.forEach(function (item) { cards.appendChild(card(item)); });
    box.appendChild(cards);
    container.textContent = "";
    container.appendChild(box);
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

  function start() {
    var nodes = document.querySelectorAll("[data-recsys-product]");
    for (var i = 0; i < nodes.length; i++) load(nodes[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
