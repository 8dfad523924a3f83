// The support page's script: looks an order up through the JSON API and shows it.
//
// SAFETY: order fields come from Kafka and may be hostile (any string, markup included).
// Everything from the network is rendered with DOM text APIs only: textContent,
// createElement, append. Never turn data into markup: no HTML-string properties, no
// adjacent-HTML insertion, no document writing. A unit test in page.rs scans this file
// for those APIs, and the Content-Security-Policy forbids inline scripts as a second wall.
'use strict';

(function () {
  const ORDER_API = '/api/v1/orders/';
  const LIST_API = '/api/v1/orders';
  const PAGE_SIZE = 20;
  const TITLE = 'Order lookup · orders-service';

  const $ = (id) => document.getElementById(id);
  const form = $('lookup');
  const input = $('order-id');
  const statusLine = $('status');
  const message = $('message');
  const orderView = $('order');
  const rawToggle = $('raw-toggle');
  const raw = $('raw');
  const recentList = $('recent-list');
  const recentStatus = $('recent-status');
  const recentMore = $('recent-more');

  // The lookup in flight, so that a newer one can cancel it.
  let inFlight = null;
  // The cursor of the next page of recent orders, or null on the last page.
  let nextCursor = null;

  // ---- Formatting (pure functions of plain values; the results are set as text). ----

  const DASH = '—';

  function text(value) {
    if (value === null || value === undefined || value === '') {
      return DASH;
    }
    return String(value);
  }

  // Minor units to "12.34 USD", with integer arithmetic so that no float rounding shows.
  function money(minor, currency) {
    if (typeof minor !== 'number' || !Number.isFinite(minor)) {
      return text(minor);
    }
    const sign = minor < 0 ? '-' : '';
    const abs = Math.abs(Math.trunc(minor));
    const units = Math.floor(abs / 100);
    const cents = String(abs % 100).padStart(2, '0');
    const suffix = currency ? ' ' + String(currency) : '';
    return sign + units.toLocaleString('en-US') + '.' + cents + suffix;
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  // A Date as "2021-11-26 06:22:19 UTC": support people compare times across time zones.
  function utc(date) {
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
      return null;
    }
    return (
      date.getUTCFullYear() + '-' + pad(date.getUTCMonth() + 1) + '-' + pad(date.getUTCDate()) +
      ' ' + pad(date.getUTCHours()) + ':' + pad(date.getUTCMinutes()) + ':' +
      pad(date.getUTCSeconds()) + ' UTC'
    );
  }

  function dateText(rfc3339) {
    if (typeof rfc3339 !== 'string') {
      return text(rfc3339);
    }
    return utc(new Date(rfc3339)) || rfc3339;
  }

  function unixText(seconds) {
    if (typeof seconds !== 'number') {
      return text(seconds);
    }
    return utc(new Date(seconds * 1000)) || String(seconds);
  }

  // ---- DOM helpers (text only). ----

  function el(tag, textValue, className) {
    const node = document.createElement(tag);
    if (textValue !== undefined) {
      node.textContent = textValue;
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  // Fills a <dl> with [label, value, field] rows, each pair in a <div> for the layout; the
  // field names the JSON path, for the browser test and for anyone reading the page's tree.
  function fillList(dl, rows) {
    dl.replaceChildren();
    for (const [label, value, field] of rows) {
      const pair = el('div', undefined, 'pair');
      const dd = el('dd', value);
      if (field) {
        dd.dataset.field = field;
      }
      pair.append(el('dt', label), dd);
      dl.append(pair);
    }
  }

  function obj(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  }

  // ---- Messages. ----

  function setStatus(textValue) {
    statusLine.textContent = textValue;
  }

  function showMessage(kind, textValue) {
    message.className = 'message ' + kind;
    message.dataset.kind = kind;
    message.textContent = textValue;
    message.hidden = false;
  }

  function clearMessage() {
    message.hidden = true;
    message.textContent = '';
    delete message.dataset.kind;
  }

  // ---- Rendering the order. ----

  function renderOrder(order, body, source, latencyMs) {
    const delivery = obj(order.delivery);
    const payment = obj(order.payment);
    const items = Array.isArray(order.items) ? order.items : [];
    const currency = payment.currency;

    $('order-uid').textContent = text(order.order_uid);
    $('source').textContent = source;
    $('source-badge').dataset.source = source;
    $('latency').textContent = latencyMs.toFixed(1) + ' ms';

    fillList($('summary-fields'), [
      ['Order uid', text(order.order_uid), 'order_uid'],
      ['Track number', text(order.track_number), 'track_number'],
      ['Date created', dateText(order.date_created), 'date_created'],
      ['Customer', text(order.customer_id), 'customer_id'],
      ['Locale', text(order.locale), 'locale'],
      ['Delivery service', text(order.delivery_service), 'delivery_service'],
      ['Entry', text(order.entry), 'entry'],
      ['Shard key', text(order.shardkey), 'shardkey'],
      ['OOF shard', text(order.oof_shard), 'oof_shard'],
      ['SM id', text(order.sm_id), 'sm_id'],
    ]);

    fillList($('delivery-fields'), [
      ['Name', text(delivery.name), 'delivery.name'],
      ['Phone', text(delivery.phone), 'delivery.phone'],
      ['Email', text(delivery.email), 'delivery.email'],
      ['Address', text(delivery.address), 'delivery.address'],
      ['City', text(delivery.city), 'delivery.city'],
      ['Region', text(delivery.region), 'delivery.region'],
      ['Zip', text(delivery.zip), 'delivery.zip'],
    ]);

    fillList($('payment-fields'), [
      ['Transaction', text(payment.transaction), 'payment.transaction'],
      ['Provider', text(payment.provider), 'payment.provider'],
      ['Bank', text(payment.bank), 'payment.bank'],
      ['Currency', text(currency), 'payment.currency'],
      ['Amount', money(payment.amount, currency), 'payment.amount'],
      ['Delivery cost', money(payment.delivery_cost, currency), 'payment.delivery_cost'],
      ['Goods total', money(payment.goods_total, currency), 'payment.goods_total'],
      ['Custom fee', money(payment.custom_fee, currency), 'payment.custom_fee'],
      ['Payment time', unixText(payment.payment_dt), 'payment.payment_dt'],
    ]);

    const tbody = $('items-body');
    tbody.replaceChildren();
    for (const entry of items) {
      const item = obj(entry);
      const row = document.createElement('tr');
      const cells = [
        [text(item.name), 'items.name', ''],
        [text(item.brand), 'items.brand', ''],
        [text(item.size), 'items.size', ''],
        [money(item.price, currency), 'items.price', 'num'],
        [text(item.sale), 'items.sale', 'num'],
        [money(item.total_price, currency), 'items.total_price', 'num'],
        [text(item.status), 'items.status', 'num'],
        [text(item.rid), 'items.rid', 'mono'],
        [text(item.chrt_id), 'items.chrt_id', 'num'],
        [text(item.nm_id), 'items.nm_id', 'num'],
      ];
      for (const [value, field, className] of cells) {
        const td = el('td', value, className);
        td.dataset.field = field;
        row.append(td);
      }
      tbody.append(row);
    }
    $('item-count').textContent = '(' + items.length + ')';

    raw.textContent = body;
    setRawVisible(false);
    orderView.hidden = false;
    markActive(order.order_uid);
  }

  function setRawVisible(visible) {
    raw.hidden = !visible;
    rawToggle.setAttribute('aria-expanded', String(visible));
    rawToggle.textContent = visible ? 'Hide raw JSON' : 'Show raw JSON';
  }

  // ---- Lookups. ----

  function problemDetail(body) {
    try {
      const problem = JSON.parse(body);
      if (problem && typeof problem.detail === 'string' && problem.detail !== '') {
        return problem.detail;
      }
      if (problem && typeof problem.title === 'string') {
        return problem.title;
      }
    } catch (_) {
      // Not JSON: fall through to the generic wording.
    }
    return null;
  }

  function urlFor(id) {
    return '/?id=' + encodeURIComponent(id);
  }

  async function lookup(rawId, push) {
    const id = String(rawId).trim();
    input.value = id;
    if (id === '') {
      orderView.hidden = true;
      showMessage('error', 'Type an order id first.');
      input.focus();
      return;
    }
    if (push) {
      const target = urlFor(id);
      if (location.pathname + location.search !== target) {
        history.pushState({ id: id }, '', target);
      }
    }
    document.title = 'Order ' + id + ' · orders-service';

    if (inFlight) {
      inFlight.abort();
    }
    const controller = new AbortController();
    inFlight = controller;
    clearMessage();
    setStatus('Looking up ' + id + '…');
    document.body.classList.add('busy');

    let response;
    let body;
    const started = performance.now();
    try {
      // no-store: the answer is immutable and cacheable, but the page reports where the
      // service found it and how long that took, which a browser-cached copy would hide.
      response = await fetch(ORDER_API + encodeURIComponent(id), {
        headers: { Accept: 'application/json' },
        cache: 'no-store',
        signal: controller.signal,
      });
      body = await response.text();
    } catch (err) {
      if (controller.signal.aborted) {
        return;
      }
      finish(controller);
      orderView.hidden = true;
      showMessage(
        'error',
        'Could not reach the service (network error). Check the connection and try again.',
      );
      setStatus('');
      return;
    }
    const latency = performance.now() - started;
    if (controller.signal.aborted) {
      return;
    }
    finish(controller);
    setStatus('');

    if (response.ok) {
      let order;
      try {
        order = JSON.parse(body);
      } catch (_) {
        orderView.hidden = true;
        showMessage('error', 'The service answered with something that is not JSON.');
        return;
      }
      const cache = (response.headers.get('X-Cache') || '').toLowerCase();
      const source = cache === 'hit' ? 'cache' : cache === 'miss' ? 'database' : 'unknown';
      renderOrder(obj(order), body, source, latency);
      setStatus('Found order ' + id + ' in ' + latency.toFixed(1) + ' ms (' + source + ').');
      return;
    }

    orderView.hidden = true;
    markActive(null);
    const detail = problemDetail(body);
    if (response.status === 404) {
      showMessage('not-found', 'No order with id “' + id + '”.');
    } else if (response.status === 400) {
      showMessage('invalid', detail || 'This is not a valid order id.');
    } else if (response.status >= 500) {
      showMessage(
        'unavailable',
        'The service cannot answer right now (HTTP ' + response.status +
          '). Please try again in a moment.',
      );
    } else {
      showMessage(
        'error',
        'Unexpected answer from the service (HTTP ' + response.status + ')' +
          (detail ? ': ' + detail : '.'),
      );
    }
  }

  function finish(controller) {
    if (inFlight === controller) {
      inFlight = null;
      document.body.classList.remove('busy');
    }
  }

  function showIdle() {
    if (inFlight) {
      inFlight.abort();
      finish(inFlight);
    }
    orderView.hidden = true;
    clearMessage();
    setStatus('');
    input.value = '';
    document.title = TITLE;
    markActive(null);
  }

  function idFromLocation() {
    return new URLSearchParams(location.search).get('id');
  }

  // ---- Recent orders. ----

  function markActive(id) {
    for (const link of recentList.querySelectorAll('a')) {
      if (id !== null && link.dataset.orderUid === id) {
        link.setAttribute('aria-current', 'true');
      } else {
        link.removeAttribute('aria-current');
      }
    }
  }

  function recentEntry(summary) {
    const s = obj(summary);
    const uid = String(s.order_uid === undefined ? '' : s.order_uid);
    const li = document.createElement('li');
    const link = el('a', uid === '' ? DASH : uid, 'recent-uid');
    // The URL is built here and always starts with "/?id=": data only fills the query value.
    link.href = urlFor(uid);
    link.dataset.orderUid = uid;
    link.addEventListener('click', (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) {
        return;
      }
      event.preventDefault();
      lookup(uid, true);
    });
    const count = Number(s.item_count);
    const details = el(
      'span',
      dateText(s.date_created) + ' · ' + text(s.customer_id) + ' · ' +
        money(s.amount, s.currency) + ' · ' + text(s.item_count) +
        (count === 1 ? ' item' : ' items'),
      'recent-details',
    );
    li.append(link, details);
    return li;
  }

  async function loadRecent(more) {
    let url = LIST_API + '?limit=' + PAGE_SIZE;
    if (more) {
      if (!nextCursor) {
        return;
      }
      url += '&before=' + encodeURIComponent(nextCursor);
    }
    recentStatus.textContent = 'Loading…';
    recentMore.disabled = true;
    let response;
    let page;
    try {
      response = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      const body = await response.text();
      if (!response.ok) {
        const detail = problemDetail(body);
        recentStatus.textContent =
          response.status >= 500
            ? 'The service cannot list orders right now. Try Refresh in a moment.'
            : 'Could not list orders (HTTP ' + response.status + ')' +
              (detail ? ': ' + detail : '.');
        recentMore.disabled = false;
        return;
      }
      page = obj(JSON.parse(body));
    } catch (_) {
      recentStatus.textContent = 'Could not reach the service to list orders (network error).';
      recentMore.disabled = false;
      return;
    }
    if (!more) {
      recentList.replaceChildren();
    }
    const orders = Array.isArray(page.orders) ? page.orders : [];
    for (const summary of orders) {
      recentList.append(recentEntry(summary));
    }
    nextCursor = typeof page.next === 'string' && page.next !== '' ? page.next : null;
    recentMore.hidden = nextCursor === null;
    recentMore.disabled = false;
    recentStatus.textContent =
      recentList.children.length === 0 ? 'No orders stored yet.' : '';
    markActive(idFromLocation());
  }

  // ---- Wiring. ----

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    lookup(input.value, true);
  });

  rawToggle.addEventListener('click', () => {
    setRawVisible(raw.hidden);
  });

  recentMore.addEventListener('click', () => {
    loadRecent(true);
  });

  $('recent-refresh').addEventListener('click', () => {
    nextCursor = null;
    loadRecent(false);
  });

  window.addEventListener('popstate', () => {
    const id = idFromLocation();
    if (id === null || id.trim() === '') {
      showIdle();
    } else {
      lookup(id, false);
    }
  });

  const initial = idFromLocation();
  if (initial !== null && initial.trim() !== '') {
    lookup(initial, false);
  } else {
    input.focus();
  }
  loadRecent(false);
})();
