/*! streamrec storefront widget (Apache-2.0). Dependency-free; see docs/WIDGET.md.
 *
 * <script src="https://reco.example/widget.js" data-endpoint="https://reco.example"
 *         data-tenant="shop1" data-placement="product_page" data-container="#recs" async></script>
 */
(function () {
  'use strict';

  var IMPRESSION_SCHEMA = 'iglu:dev.streamrec/impression/jsonschema/1-0-0';
  var CLICK_SCHEMA = 'iglu:dev.streamrec/click/jsonschema/1-0-0';
  var STYLE_ID = 'streamrec-widget-style';
  var LOCAL_ID_KEY = 'streamrec_uid';

  var script = document.currentScript ||
      document.querySelector('script[src*="widget.js"][data-tenant]');
  if (!script) return;
  var data = script.dataset;

  var config = {
    endpoint: (data.endpoint || new URL(script.src, location.href).origin).replace(/\/+$/, ''),
    tenant: data.tenant || 'default',
    placement: data.placement || 'default',
    container: data.container || '',
    n: Math.max(1, Math.min(50, parseInt(data.n || '8', 10) || 8)),
    userId: data.userId || '',
    title: data.title || 'Recommended for you',
    locale: data.locale || document.documentElement.lang || navigator.language || 'en',
    currency: data.currency || '',
    contextItem: data.contextItem || '',
    itemPattern: data.itemPattern || '/products/([^/?#]+)',
    tracker: data.tracker || 'auto',  // auto | snowplow | native | none
    variant: data.variant || '',
  };

  // ---- identity: the Snowplow domain user id (first field of _sp_id.*), else our own.
  function cookieUserId() {
    var parts = document.cookie ? document.cookie.split(/;\s*/) : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=');
      if (eq > 0 && parts[i].slice(0, eq).indexOf('_sp_id.') === 0) {
        var duid = decodeURIComponent(parts[i].slice(eq + 1)).split('.')[0];
        if (duid) return duid;
      }
    }
    return '';
  }
  function localUserId() {
    try {
      var id = localStorage.getItem(LOCAL_ID_KEY);
      if (!id) {
        id = randomId();
        localStorage.setItem(LOCAL_ID_KEY, id);
      }
      return id;
    } catch (e) {
      return randomId();
    }
  }
  function userId() { return config.userId || cookieUserId() || localUserId(); }
  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0;
      return (c === 'x' ? r : (r & 3 | 8)).toString(16);
    });
  }

  // ---- tracking: Snowplow self-describing events when a tracker is on the page, else
  // native JSON events to the collector.
  function snowplowSender() {
    if (config.tracker === 'native' || config.tracker === 'none') return null;
    if (typeof window.snowplow === 'function') {
      return function (schema, payload) {
        window.snowplow('trackSelfDescribingEvent', { event: { schema: schema, data: payload } });
      };
    }
    var api = window.snowplowBrowserTracking;
    if (api && typeof api.trackSelfDescribingEvent === 'function') {
      return function (schema, payload) {
        api.trackSelfDescribingEvent({ event: { schema: schema, data: payload } });
      };
    }
    return null;
  }
  function track(type, schema, payload, itemId) {
    if (config.tracker === 'none') return;
    var send = snowplowSender();
    if (send) {
      send(schema, Object.assign({ type: type }, itemId ? { item_id: itemId } : {}, payload));
      return;
    }
    var event = {
      event_id: randomId(),
      tenant: config.tenant,
      user_id: userId(),
      type: type,
      timestamp: Date.now(),
      properties: payload,
    };
    if (itemId) event.item_id = itemId;
    try {
      // text/plain keeps it a simple CORS request (no preflight), which keepalive needs.
      fetch(config.endpoint + '/v1/events', {
        method: 'POST',
        body: JSON.stringify(event),
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        keepalive: true,
        credentials: 'omit',
        mode: 'cors',
      }).catch(function () {});
    } catch (e) { /* tracking must never break the shop */ }
  }

  // ---- rendering
  function injectStyle() {
    if (document.getElementById(STYLE_ID)) return;
    var style = document.createElement('style');
    style.id = STYLE_ID;
    style.textContent = [
      '.streamrec{margin:1.5rem 0;font:inherit;color:inherit}',
      '.streamrec__title{font-size:1.2rem;margin:0 0 .75rem}',
      '.streamrec__viewport{position:relative;display:flex;align-items:center;gap:.25rem}',
      '.streamrec__list{display:flex;gap:1rem;overflow-x:auto;scroll-snap-type:x mandatory;',
      'list-style:none;margin:0;padding:.25rem;flex:1;scrollbar-width:thin;scroll-behavior:smooth}',
      '.streamrec__list:focus-visible{outline:2px solid #1a73e8;outline-offset:2px}',
      '.streamrec__item{flex:0 0 clamp(130px,40vw,200px);scroll-snap-align:start}',
      '.streamrec__link{display:flex;flex-direction:column;gap:.35rem;color:inherit;',
      'text-decoration:none}',
      '.streamrec__link:focus-visible{outline:2px solid #1a73e8;outline-offset:2px}',
      '.streamrec__image{width:100%;aspect-ratio:1/1;object-fit:cover;border-radius:6px;',
      'background:#f2f2f2}',
      '.streamrec__name{font-size:.95rem;line-height:1.3}',
      '.streamrec__price{font-weight:600}',
      '.streamrec__nav{flex:0 0 auto;width:2.25rem;height:2.25rem;border-radius:50%;',
      'border:1px solid #ccc;background:#fff;color:#222;font-size:1.2rem;cursor:pointer}',
      '.streamrec__nav:focus-visible{outline:2px solid #1a73e8}',
      '@media (max-width:600px){.streamrec__nav{display:none}}',
      '@media (prefers-reduced-motion:reduce){.streamrec__list{scroll-behavior:auto}}',
    ].join('');
    document.head.appendChild(style);
  }

  function formatPrice(price, currency) {
    if (price === undefined || price === null || price === '') return '';
    var value = Number(price);
    if (!isFinite(value)) return String(price);
    var code = currency || config.currency;
    try {
      if (code) {
        return new Intl.NumberFormat(config.locale, { style: 'currency', currency: code })
            .format(value);
      }
      return new Intl.NumberFormat(config.locale, { minimumFractionDigits: 2 }).format(value);
    } catch (e) {
      return value.toFixed(2) + (code ? ' ' + code : '');
    }
  }

  function el(tag, cls, attrs) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    for (var k in attrs || {}) {
      if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]);
    }
    return node;
  }

  var container = null;
  var uid = 'streamrec-' + Math.random().toString(36).slice(2, 8);

  function containerNode() {
    if (container && container.isConnected) return container;
    container = config.container ? document.querySelector(config.container) : null;
    if (!container) {
      container = el('div', 'streamrec-container');
      script.parentNode ? script.parentNode.insertBefore(container, script.nextSibling)
                        : document.body.appendChild(container);
    }
    return container;
  }

  function render(response, startedAt) {
    var box = containerNode();
    var items = (response.items || []).filter(function (it) {
      return it.item_id !== state.contextItem;
    }).slice(0, config.n);
    box.textContent = '';
    if (!items.length) {
      box.hidden = true;
      return items;
    }
    box.hidden = false;
    injectStyle();
    var titleId = uid + '-title';
    var section = el('section', 'streamrec', {
      'aria-labelledby': titleId,
      'data-list-id': response.list_id,
      'data-model': response.model,
    });
    var heading = el('h2', 'streamrec__title', { id: titleId });
    heading.textContent = config.title;
    section.appendChild(heading);

    var viewport = el('div', 'streamrec__viewport');
    var list = el('ul', 'streamrec__list', {
      role: 'list',
      tabindex: '0',
      'aria-label': config.title + ' (' + items.length + ' products, scroll with the arrow keys)',
    });
    items.forEach(function (it, i) {
      var li = el('li', 'streamrec__item', { 'aria-posinset': i + 1, 'aria-setsize': items.length });
      var name = it.title || it.item_id;
      var price = formatPrice(it.price, it.currency);
      var link = el('a', 'streamrec__link', {
        href: it.url || '#',
        'data-item-id': it.item_id,
        'data-position': i + 1,
        'aria-label': price ? name + ', ' + price : name,
      });
      if (it.image_url) {
        link.appendChild(el('img', 'streamrec__image', {
          src: it.image_url, alt: name, loading: i < 4 ? 'eager' : 'lazy',
          width: '200', height: '200', decoding: 'async',
        }));
      }
      var nameNode = el('span', 'streamrec__name');
      nameNode.textContent = name;
      link.appendChild(nameNode);
      if (price) {
        var priceNode = el('span', 'streamrec__price');
        priceNode.textContent = price;
        link.appendChild(priceNode);
      }
      li.appendChild(link);
      list.appendChild(li);
    });

    function scrollByItems(direction) {
      var first = list.firstElementChild;
      var step = first ? first.getBoundingClientRect().width + 16 : 200;
      list.scrollBy({ left: direction * step, behavior: 'smooth' });
    }
    var prev = el('button', 'streamrec__nav streamrec__nav--prev',
                  { type: 'button', 'aria-label': 'Previous products', 'aria-controls': uid });
    prev.textContent = '\u2039';
    var next = el('button', 'streamrec__nav streamrec__nav--next',
                  { type: 'button', 'aria-label': 'Next products', 'aria-controls': uid });
    next.textContent = '\u203a';
    list.id = uid;
    prev.addEventListener('click', function () { scrollByItems(-1); });
    next.addEventListener('click', function () { scrollByItems(1); });
    list.addEventListener('keydown', function (e) {
      if (e.target !== list) return;
      if (e.key === 'ArrowRight') { scrollByItems(1); e.preventDefault(); }
      if (e.key === 'ArrowLeft') { scrollByItems(-1); e.preventDefault(); }
      if (e.key === 'Home') { list.scrollTo({ left: 0 }); e.preventDefault(); }
      if (e.key === 'End') { list.scrollTo({ left: list.scrollWidth }); e.preventDefault(); }
    });
    list.addEventListener('click', function (e) {
      var link = e.target.closest ? e.target.closest('a[data-item-id]') : null;
      if (!link) return;
      track('click', CLICK_SCHEMA, listProps(response), link.getAttribute('data-item-id'));
    });
    viewport.appendChild(prev);
    viewport.appendChild(list);
    viewport.appendChild(next);
    section.appendChild(viewport);
    box.appendChild(section);

    observeImpression(section, response, items);
    var detail = {
      list_id: response.list_id,
      model: response.model,
      items: items.map(function (it) { return it.item_id; }),
      ms: performance.now() - startedAt,
    };
    try { performance.mark('streamrec:rendered'); } catch (e) { /* old browsers */ }
    box.dispatchEvent(new CustomEvent('streamrec:rendered', { detail: detail, bubbles: true }));
    return items;
  }

  function listProps(response) {
    var props = { list_id: response.list_id, placement: config.placement, model: response.model };
    if (config.variant || response.variant) props.variant = config.variant || response.variant;
    return props;
  }

  var impressed = {};
  function observeImpression(section, response, items) {
    var send = function () {
      if (impressed[response.list_id]) return;
      impressed[response.list_id] = true;
      var props = listProps(response);
      props.items = items.map(function (it) { return it.item_id; });
      track('impression', IMPRESSION_SCHEMA, props);
    };
    if (!('IntersectionObserver' in window)) return send();
    var io = new IntersectionObserver(function (entries) {
      for (var i = 0; i < entries.length; i++) {
        if (entries[i].isIntersecting) {
          io.disconnect();
          send();
          return;
        }
      }
    }, { threshold: 0.5 });
    io.observe(section);
  }

  // ---- fetching and refreshing
  var state = { contextItem: '', controller: null, url: location.href };

  function itemFromUrl() {
    try {
      var m = location.pathname.match(new RegExp(config.itemPattern));
      return m && m[1] ? decodeURIComponent(m[1]) : '';
    } catch (e) {
      return '';
    }
  }

  function refresh(contextItem, startedAt) {
    state.contextItem = contextItem || '';
    if (state.controller) state.controller.abort();
    var controller = window.AbortController ? new AbortController() : null;
    state.controller = controller;
    var params = new URLSearchParams({
      user_id: userId(),
      tenant: config.tenant,
      placement: config.placement,
      n: String(config.n + (state.contextItem ? 1 : 0)),
    });
    if (state.contextItem) params.set('context_item', state.contextItem);
    return fetch(config.endpoint + '/v1/recommendations?' + params.toString(), {
      credentials: 'omit',
      mode: 'cors',
      signal: controller ? controller.signal : undefined,
    }).then(function (res) {
      if (!res.ok) throw new Error('streamrec: recommendations answered ' + res.status);
      return res.json();
    }).then(function (body) {
      if (state.controller !== controller) return;  // a newer view won
      whenDomReady(function () { render(body, startedAt); });
    }).catch(function (err) {
      if (err && err.name === 'AbortError') return;
      if (window.console) console.warn(err);
    });
  }

  function onView(e) {
    var detail = (e && e.detail) || {};
    var item = detail.item_id || detail.itemId || itemFromUrl() || config.contextItem;
    refresh(item, performance.now());
  }

  function onLocationChange() {
    if (location.href === state.url) return;
    state.url = location.href;
    var item = itemFromUrl();
    if (item !== state.contextItem) refresh(item, performance.now());
  }

  // SPA shops change the URL without a page load: hook the history API once per page.
  if (!history.__streamrecPatched) {
    history.__streamrecPatched = true;
    ['pushState', 'replaceState'].forEach(function (name) {
      var original = history[name];
      history[name] = function () {
        var result = original.apply(this, arguments);
        window.dispatchEvent(new Event('streamrec:locationchange'));
        return result;
      };
    });
  }
  window.addEventListener('streamrec:locationchange', onLocationChange);
  window.addEventListener('popstate', onLocationChange);
  window.addEventListener('hashchange', onLocationChange);
  document.addEventListener('streamrec:view', onView);

  // Public handle for shops that want to drive it themselves.
  window.streamrec = window.streamrec || {};
  window.streamrec.refresh = function (itemId) { return refresh(itemId, performance.now()); };

  // The container may come after the script tag: render once the DOM is there (the
  // request does not wait for it).
  function whenDomReady(fn) {
    if (document.readyState === 'loading' &&
        !(config.container && document.querySelector(config.container))) {
      document.addEventListener('DOMContentLoaded', fn, { once: true });
    } else {
      fn();
    }
  }

  // A page view starts at navigation (performance.now() counts from it).
  refresh(config.contextItem || itemFromUrl(), 0);
})();
