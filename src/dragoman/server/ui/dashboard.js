// The dragoman dashboard: reads /admin/series, /admin/live, /admin/deployments and
// /admin/usage with the admin key kept in sessionStorage (see server/ui.py for why),
// and draws them with uPlot. Plain script, no build step.
(function () {
  "use strict";

  var KEY = "dragoman.adminKey";
  var REFRESH_MS = 5000;
  var COLORS = ["#2e86de", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085",
                "#d35400", "#2c3e50", "#f1c40f", "#7f8c8d"];
  var charts = {};
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function key() { return sessionStorage.getItem(KEY); }

  function api(path) {
    return fetch(path, { headers: { "Authorization": "Bearer " + key() }, cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          signOut("The admin key was refused.");
          throw new Error("unauthorized");
        }
        if (!r.ok) { throw new Error(path + " answered " + r.status); }
        return r.json();
      });
  }

  function show(signedIn) {
    $("login").hidden = signedIn;
    $("dash").hidden = !signedIn;
    $("logout").hidden = !signedIn;
    $("window-label").hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    if (timer !== null) { clearInterval(timer); timer = null; }
    show(false);
    $("login-error").textContent = message || "";
  }

  function signIn(k) {
    sessionStorage.setItem(KEY, k);
    $("login-error").textContent = "";
    return api("/admin/live").then(function () {
      show(true);
      refresh();
      if (timer === null) { timer = setInterval(refresh, REFRESH_MS); }
    }).catch(function () { /* signOut has said why */ });
  }

  // --- charts ------------------------------------------------------------------------------

  function chart(id, labels, xs, ys, fmt) {
    var el = $(id);
    var names = labels.join("\u0000");
    var data = [xs].concat(ys);
    var c = charts[id];
    if (c && c.names === names) { c.plot.setData(data); return; }
    if (c) { c.plot.destroy(); }
    el.textContent = "";
    if (!labels.length) {
      var empty = document.createElement("div");
      empty.className = "empty";
      empty.textContent = "no data in this window";
      el.appendChild(empty);
      delete charts[id];
      return;
    }
    var series = [{}].concat(labels.map(function (name, i) {
      var colour = COLORS[i % COLORS.length];
      // Points too: a percentile over a step with no neighbours is a lone point.
      return { label: name, stroke: colour, width: 2, spanGaps: true,
               points: { show: true, size: 5, stroke: colour, fill: colour },
               value: function (u, v) { return v == null ? "–" : fmt(v); } };
    }));
    var plot = new uPlot({
      width: Math.max(300, el.clientWidth), height: 220, series: series,
      scales: { x: { time: true } },
      axes: [{}, { values: function (u, vals) { return vals.map(fmt); }, size: 60 }],
    }, data, el);
    charts[id] = { plot: plot, names: names };
  }

  function keyed(obj) {
    var names = Object.keys(obj).sort();
    return { names: names, values: names.map(function (n) { return obj[n]; }) };
  }

  function num(v) { return v.toLocaleString(undefined, { maximumFractionDigits: 1 }); }
  function ms(v) { return v.toFixed(v < 10 ? 1 : 0); }
  function usd(v) { return "$" + v.toFixed(v < 1 ? 4 : 2); }
  function sum(xs) { return xs.reduce(function (a, b) { return a + (b || 0); }, 0); }

  function drawSeries(s) {
    var t = s.t;
    var errorTotals = t.map(function (_, i) {
      return sum(Object.keys(s.errors).map(function (k) { return s.errors[k][i]; }));
    });
    chart("ch-traffic", ["requests", "errors"], t, [s.requests, errorTotals], num);
    chart("ch-latency", ["p50", "p90", "p99"], t,
          [s.latency_ms.p50, s.latency_ms.p90, s.latency_ms.p99], ms);
    chart("ch-ttft", ["p50", "p90", "p99"], t,
          [s.ttft_ms.p50, s.ttft_ms.p90, s.ttft_ms.p99], ms);
    [["tokens", "tenant", num], ["tokens", "model", num], ["cost", "tenant", usd],
     ["cost", "model", usd]].forEach(function (spec) {
      var k = keyed(s[spec[0]][spec[1]]);
      chart("ch-" + spec[0] + "-" + spec[1], k.names, t, k.values, spec[2]);
    });
    var e = keyed(s.errors);
    chart("ch-errors", e.names, t, e.values, num);
    $("c-requests").textContent = num(sum(s.requests));
    $("c-errors").textContent = num(sum(errorTotals));
    var tokens = keyed(s.tokens.model).values.map(sum);
    $("c-tokens").textContent = num(sum(tokens));
    $("c-cost").textContent = usd(sum(keyed(s.cost.model).values.map(sum)));
  }

  // --- tables ------------------------------------------------------------------------------

  function fill(tableId, rows) {
    var body = $(tableId).tBodies[0];
    body.textContent = "";
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (cell) {
        var td = document.createElement("td");
        td.textContent = cell.text;
        if (cell.cls) { td.className = cell.cls; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function cell(v, cls) { return { text: v == null ? "–" : String(v), cls: cls }; }

  function drawDeployments(d) {
    fill("deployments", d.data.map(function (x) {
      return [cell(x.model), cell(x.deployment), cell(x.provider),
              cell(x.breaker, "state-" + x.breaker), cell(x.in_flight, "num"),
              cell(x.latency_ms == null ? null : ms(x.latency_ms), "num"),
              cell(x.cooling_down_s, "num"), cell(x.open_connections, "num")];
    }));
  }

  function drawRecent(u) {
    fill("recent", u.data.map(function (r) {
      return [cell(new Date(r.ts).toLocaleTimeString()), cell(r.tenant), cell(r.model),
              cell(r.deployment), cell(r.outcome, r.outcome === "ok" ? "" : "outcome-bad"),
              cell(r.status, "num"), cell(ms(r.latency_ms), "num"),
              cell(r.ttft_ms == null ? null : ms(r.ttft_ms), "num"),
              cell(r.input_tokens, "num"), cell(r.output_tokens, "num"),
              cell(usd(r.cost), "num")];
    }));
  }

  function refresh() {
    var win = $("window").value;
    Promise.all([
      api("/admin/series?window=" + encodeURIComponent(win)).then(drawSeries),
      api("/admin/live").then(function (l) {
        $("c-inflight").textContent = num(l.in_flight_requests);
        $("c-streams").textContent = num(l.in_flight_streams);
      }),
      api("/admin/deployments").then(drawDeployments),
      api("/admin/usage?limit=25").then(drawRecent),
    ]).then(function () {
      $("status").textContent = "updated " + new Date().toLocaleTimeString();
    }).catch(function (err) {
      if (key()) { $("status").textContent = "update failed: " + err.message; }
    });
  }

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = $("key");
    var k = input.value.trim();
    input.value = "";
    if (k) { signIn(k); }
  });
  $("logout").addEventListener("click", function () { signOut(""); });
  $("window").addEventListener("change", function () { charts = clear(charts); refresh(); });

  function clear(cs) {
    Object.keys(cs).forEach(function (id) { cs[id].plot.destroy(); });
    return {};
  }

  if (key()) { signIn(key()); } else { show(false); }
})();
