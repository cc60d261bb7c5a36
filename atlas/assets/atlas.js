// hiddenlab feature atlas: the index's search and sort, run in the browser
// over the rows the data/index-N.js files add. The state lives in the URL
// hash (#q=…&re=…&sort=…&kind=…), so a link (or a headless browser) can open
// the index with a query applied.
(function () {
  "use strict";
  var A = window.ATLAS = { rows: [], meta: { books: [], regexes: [] }, limit: 300 };
  A.add = function (rows) { for (var i = 0; i < rows.length; i++) A.rows.push(rows[i]); };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function show(s) {
    if (!s.trim()) s = s.replace(/ /g, "\u2423");
    return s.replace(/\r?\n|\r/g, "\u21b5").replace(/\t/g, "\u21e5");
  }
  function pct(x) { return x === 0 ? "0%" : (x < 0.0001 ? (100 * x).toPrecision(2) : (100 * x).toFixed(2)) + "%"; }
  function num(x) { return x === 0 ? "0" : (Math.abs(x) >= 1000 || Math.abs(x) < 0.001 ? x.toPrecision(3) : x.toFixed(Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x)))))); }
  function name(r) { return A.meta.books[r.b] + " " + r.k + " " + r.i; }

  // Regex precision of a row: the share of its active positions whose token
  // the regex matches, over its listed top tokens (tokens beyond the list
  // count as not matching: a lower bound).
  function regexPrecision(r, re) {
    if (!r.n) return 0;
    var hit = 0;
    for (var i = 0; i < r.t.length; i++) if (re.test(r.t[i][0])) hit += r.t[i][1];
    return hit / r.n;
  }

  function readHash() {
    var h = {}, s = location.hash.replace(/^#/, "");
    s.split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      var k = i < 0 ? kv : kv.slice(0, i), v = i < 0 ? "" : kv.slice(i + 1);
      try { h[decodeURIComponent(k)] = decodeURIComponent(v.replace(/\+/g, " ")); } catch (e) { h[k] = v; }
    });
    return h;
  }
  function writeHash() {
    var parts = [];
    ["q", "re", "kind", "sort"].forEach(function (k) {
      var v = document.getElementById(k).value;
      if (v && !(k === "sort" && v === "freq")) parts.push(k + "=" + encodeURIComponent(v));
    });
    if (history.replaceState) history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
  }

  function render() {
    var q = document.getElementById("q").value.trim().toLowerCase();
    var reIn = document.getElementById("re"), kind = document.getElementById("kind").value;
    var sort = document.getElementById("sort").value, re = null;
    reIn.classList.remove("bad");
    if (reIn.value) {
      try { re = new RegExp(reIn.value); } catch (e) { reIn.classList.add("bad"); }
    }
    var terms = q ? q.split(/\s+/) : [];
    var rows = A.rows.filter(function (r) {
      if (kind && r.k !== kind) return false;
      if (!terms.length) return true;
      var text = name(r).toLowerCase();
      for (var i = 0; i < r.t.length; i++) text += "\u0000" + r.t[i][0].toLowerCase();
      for (var j = 0; j < terms.length; j++) if (text.indexOf(terms[j]) < 0) return false;
      return true;
    });
    rows.forEach(function (r) { r.rp = re ? regexPrecision(r, re) : null; });
    var key = {
      "freq": function (r) { return -r.f; }, "freq-asc": function (r) { return r.f; },
      "max": function (r) { return -r.m; }, "re": function (r) { return -(r.rp || 0); }
    }[sort];
    if (!key && /^p\d+$/.test(sort)) {
      var k = +sort.slice(1);
      key = function (r) { return -((r.p || [])[k] || 0); };
    }
    rows.sort(function (a, b) {
      if (key) { var d = key(a) - key(b); if (d) return d; if (sort === "re" || sort[0] === "p") { d = b.n - a.n; if (d) return d; } }
      var na = name(a), nb = name(b);
      return a.b - b.b || a.k.localeCompare(b.k) || a.i - b.i || (na < nb ? -1 : na > nb ? 1 : 0);
    });
    var html = [], shown = Math.min(rows.length, A.limit);
    for (var i = 0; i < shown; i++) {
      var r = rows[i], toks = [];
      for (var t = 0; t < r.t.length && t < 6; t++) toks.push('<span class="tok">' + esc(show(r.t[t][0])) + '</span><span class="cnt">' + r.t[t][1] + "</span>");
      var cells = '<td><a href="' + esc(r.u) + '">' + esc(A.meta.books[r.b]) + " · " + r.i + "</a></td>" +
        "<td>" + esc(r.k) + '</td><td class="num">' + pct(r.f) + '</td><td class="num">' + r.n + '</td><td class="num">' + num(r.m) +
        '</td><td class="tokens">' + toks.join("") + '</td><td class="num rp">' + (r.rp === null ? "" : r.rp.toFixed(3)) + "</td>";
      for (var p = 0; p < A.meta.regexes.length; p++) cells += '<td class="num">' + (r.p ? r.p[p].toFixed(3) : "") + "</td>";
      html.push('<tr class="feature" data-kind="' + esc(r.k) + '" data-name="' + esc(name(r)) + '">' + cells + "</tr>");
    }
    document.querySelector("#features tbody").innerHTML = html.join("");
    document.getElementById("count").textContent = rows.length + " of " + A.rows.length + " features" + (shown < rows.length ? " (first " + shown + " shown)" : "");
    var more = document.getElementById("more");
    more.hidden = shown >= rows.length;
  }

  A.start = function () {
    var h = readHash();
    ["q", "re", "kind", "sort"].forEach(function (k) {
      var el = document.getElementById(k);
      if (h[k] !== undefined) el.value = h[k];
      if (k === "sort" && !el.value) el.value = "freq";
      el.addEventListener(el.tagName === "SELECT" ? "change" : "input", function () {
        A.limit = 300;
        if (k === "re" && el.value && document.getElementById("sort").value === "freq") document.getElementById("sort").value = "re";
        writeHash();
        render();
      });
    });
    if (h.re && !h.sort) document.getElementById("sort").value = "re";
    document.getElementById("more").addEventListener("click", function () { A.limit += 300; render(); });
    window.addEventListener("hashchange", function () {
      var h2 = readHash();
      ["q", "re", "kind", "sort"].forEach(function (k) { document.getElementById(k).value = h2[k] || (k === "sort" ? "freq" : ""); });
      render();
    });
    render();
  };
})();
