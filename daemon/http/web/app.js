// app.js - Jazari's dashboard: reads the controller's /api (the same data
// and keys as jz ... --json) every few seconds and draws it. No framework,
// no build step: plain DOM and inline SVG. Text from the API is only ever
// set as text (never as HTML).
'use strict';

const POLL_MS = 5000;
const SVGNS = 'http://www.w3.org/2000/svg';
let token = null;
let me = null; // /api/status: who is looking
let timer = null;
let generation = 0; // a newer view drops an older one's answers

// --- the token: from #token=... once, then kept for this tab only -----------
function takeToken() {
  const m = /[#&]token=([A-Za-z0-9._-]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('jazari.token', m[1]);
    history.replaceState(null, '', location.pathname + '#/');
  }
  token = sessionStorage.getItem('jazari.token');
}

async function api(path) {
  // A request that hangs must not stop the polling: given up after 15 s.
  const abort = new AbortController();
  const t = setTimeout(() => abort.abort(), 15000);
  let r;
  try {
    r = await fetch(path, {headers: {'Authorization': 'Bearer ' + token}, cache: 'no-store', signal: abort.signal});
  } finally {
    clearTimeout(t);
  }
  let body = null;
  try { body = await r.json(); } catch (e) { body = {error: 'not JSON: HTTP ' + r.status}; }
  if (!r.ok) {
    const err = new Error(body && body.error ? body.error : 'HTTP ' + r.status);
    err.status = r.status;
    throw err;
  }
  return body;
}

// --- DOM helpers -------------------------------------------------------------
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k.nodeType ? k : document.createTextNode(String(k)));
  return e;
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString();
}

function setMain(...kids) {
  const m = document.getElementById('main');
  m.replaceChildren(...kids.filter(k => k !== null && k !== undefined));
}

// --- the overview: sites, nodes, GPUs; use over time; the queue; events -------
// Which GPUs of each node the visible jobs use: {node: Set(gpu)}.
function gpusInUse(jobs) {
  const used = {};
  for (const j of jobs) {
    if (j.state !== 'RUNNING' && j.state !== 'PREEMPTED') continue;
    for (const a of j.nodes || []) {
      used[a.name] = used[a.name] || new Set();
      for (const g of a.gpus || []) used[a.name].add(g);
    }
  }
  return used;
}

function nodeCard(n, used) {
  const drains = {};
  for (const g of n.gpu_drains || []) drains[g.gpu] = g;
  const mine = used[n.name] || new Set();
  // GPUs in use by jobs this person cannot see: counted, not placed.
  let others = Math.max(0, n.gpus_total - n.gpus_free - mine.size);
  const gpus = el('div', {class: 'gpus'});
  for (let i = 0; i < n.gpus_total; i++) {
    let cls = 'gpu';
    let title = 'GPU ' + i;
    const d = drains[i];
    if (d) {
      cls += ' ' + (d.state === 'draining' ? 'draining' : 'drained');
      title += ': ' + d.state + ' (' + d.reason + (d.by ? ', ' + d.by : '') + ')';
      if (d.source === 'health') cls += ' cond';
    }
    if (mine.has(i)) {
      cls += ' used';
      title += ', in use';
    } else if (!d && others > 0) {
      cls += ' used';
      title += ', in use';
      others--;
    } else if (!d && n.state !== 'up') {
      // A node out of service: its idle GPUs take nothing new either.
      cls += ' ' + n.state;
      title += ', ' + n.state + ' with the node';
    } else if (!d) {
      title += ', free';
    }
    gpus.append(el('span', {class: cls, title: title, 'data-gpu': i}));
  }
  const card = el('a', {class: 'node state-' + n.state, href: '#/node/' + encodeURIComponent(n.name),
                        'data-node': n.name, 'data-state': n.state,
                        title: n.reason ? n.state + ': ' + n.reason : n.state},
    el('div', {class: 'name', text: n.name}),
    el('div', {class: 'state'}, el('span', {class: 'badge ' + n.state, text: n.state}), ' ',
       n.alloc_state, ' · ', n.gpus_free + '/' + n.gpus_total + ' free'),
    n.gpu_model ? el('div', {class: 'muted state', text: n.gpu_model}) : null,
    gpus);
  return card;
}

function sitesGrid(nodes, jobs) {
  const used = gpusInUse(jobs);
  const bySite = new Map();
  for (const n of nodes) {
    if (!bySite.has(n.site)) bySite.set(n.site, []);
    bySite.get(n.site).push(n);
  }
  const sites = el('div', {class: 'sites', id: 'grid'});
  for (const [site, list] of [...bySite.entries()].sort()) {
    const nodesDiv = el('div', {class: 'nodes'});
    list.sort((a, b) => a.name.localeCompare(b.name));
    for (const n of list) nodesDiv.append(nodeCard(n, used));
    const gtotal = list.reduce((s, n) => s + n.gpus_total, 0);
    const gfree = list.reduce((s, n) => s + n.gpus_free, 0);
    sites.append(el('section', {class: 'site', 'data-site': site},
      el('h3', {}, 'Site ' + site + ' ', el('span', {class: 'muted', text: (gtotal - gfree) + '/' + gtotal + ' GPUs used'})),
      nodesDiv));
  }
  const legend = el('div', {class: 'legend'},
    el('span', {}, el('span', {class: 'gpu'}), 'free'),
    el('span', {}, el('span', {class: 'gpu used'}), 'in use'),
    el('span', {}, el('span', {class: 'gpu draining'}), 'draining'),
    el('span', {}, el('span', {class: 'gpu drained'}), 'drained'),
    el('span', {}, el('span', {class: 'gpu down'}), 'down'),
    el('span', {}, el('span', {class: 'gpu cond'}), 'health condition'));
  return [legend, sites];
}

// A line chart: series [{name, points: [[t, v], ...]}], y from 0 to ymax.
function lineChart(title, series, ymax, unit, width, height) {
  width = width || 480;
  height = height || 140;
  const pad = {l: 36, r: 8, t: 8, b: 18};
  let t0 = Infinity, t1 = -Infinity;
  for (const s of series) for (const [t] of s.points) { t0 = Math.min(t0, t); t1 = Math.max(t1, t); }
  const box = el('div', {class: 'chart'}, el('div', {class: 'title', text: title}));
  const g = svg('svg', {width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, role: 'img'});
  g.append(svg('title', {}, title));
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  g.append(svg('rect', {class: 'axis', x: pad.l, y: pad.t, width: w, height: h}));
  g.append(svg('text', {class: 'label', x: 2, y: pad.t + 8}, ymax + (unit || '')));
  g.append(svg('text', {class: 'label', x: 2, y: pad.t + h}, '0'));
  if (!isFinite(t0)) {
    g.append(svg('text', {class: 'label', x: pad.l + 8, y: pad.t + h / 2}, 'no samples yet'));
  } else {
    const span = Math.max(1, t1 - t0);
    g.append(svg('text', {class: 'label', x: pad.l, y: height - 4}, new Date(t0).toLocaleTimeString()));
    g.append(svg('text', {class: 'label', x: width - pad.r - 50, y: height - 4}, new Date(t1).toLocaleTimeString()));
    series.forEach((s, i) => {
      const pts = s.points.map(([t, v]) => {
        const x = pad.l + (series.length && span ? (t - t0) / span * w : 0);
        const y = pad.t + h - Math.min(1, Math.max(0, v / (ymax || 1))) * h;
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
      if (pts.length === 1) pts.push(pts[0]);
      g.append(svg('polyline', {class: 'series s' + (i % 8), points: pts.join(' ')}));
    });
  }
  box.append(g);
  const keys = el('div', {class: 'keys'});
  series.forEach((s, i) => keys.append(el('span', {class: 'k' + (i % 8), text: '— ' + s.name})));
  box.append(keys);
  return box;
}

function utilizationChart(u) {
  const series = (u.sites || []).map(s => ({
    name: s.site,
    points: u.time_ms.map((t, k) => [t, s.gpus_total[k] ? 100 * s.gpus_used[k] / s.gpus_total[k] : 0]),
  }));
  const c = lineChart('GPUs in use per site, % (a sample every ' + u.interval_s + ' s, the last 24 h)', series, 100, '%', 720, 160);
  c.id = 'utilization';
  return c;
}

function jobsTable(jobs, id) {
  if (!jobs.length) return el('p', {class: 'muted', id: id, text: 'No jobs.'});
  const t = el('table', {id: id},
    el('tr', {}, ...['JOB', 'NAME', 'USER', 'STATE', 'NODES (GPUs)', 'SUBMITTED', 'STARTED', 'ENDED', 'REASON']
      .map(h => el('th', {text: h}))));
  for (const j of jobs) {
    const where = (j.nodes || []).map(a => a.name + (a.gpus && a.gpus.length ? ' (' + a.gpus.join(',') + ')' : '')).join(' ');
    t.append(el('tr', {'data-job': j.id},
      el('td', {class: 'num', text: j.job_id}), el('td', {text: j.name || ''}), el('td', {text: j.user}),
      el('td', {class: 'job-' + j.state, text: j.state}),
      el('td', {text: where || (j.nodes_requested ? j.nodes_requested + ' × ' + j.gpus_per_node + ' GPUs' : '')}),
      el('td', {text: fmtTime(j.submit_time)}), el('td', {text: fmtTime(j.start_time)}),
      el('td', {text: fmtTime(j.end_time)}), el('td', {text: j.reason || ''})));
  }
  return t;
}

function eventsTable(events) {
  const t = el('table', {id: 'events'},
    el('tr', {}, ...['TIME', 'KIND', 'LEVEL', 'NODE', 'GPU', 'JOB', 'TEXT', 'BY'].map(h => el('th', {text: h}))));
  for (const e of events.slice().reverse()) {
    t.append(el('tr', {},
      el('td', {text: fmtTime(e.time)}), el('td', {text: e.kind}), el('td', {text: e.severity}),
      el('td', {text: e.node || ''}), el('td', {text: e.gpu === null ? '' : e.gpu}),
      el('td', {text: e.job === null ? '' : e.job}), el('td', {text: e.text}), el('td', {text: e.by || ''})));
  }
  return t;
}

async function showOverview(gen) {
  const [nodes, queue, util] = await Promise.all([api('/api/nodes'), api('/api/queue'), api('/api/utilization')]);
  let events = null;
  if (me && me.admin) events = await api('/api/events?max=20');
  if (gen !== generation) return;
  const jobs = queue.jobs || [];
  const active = jobs.filter(j => j.state === 'RUNNING' || j.state === 'PENDING' || j.state === 'PREEMPTED');
  const ended = jobs.filter(j => !active.includes(j));
  setMain(
    el('h2', {text: 'Sites, nodes and GPUs'}), ...sitesGrid(nodes.nodes || [], jobs),
    el('h2', {text: 'Use over time'}), utilizationChart(util),
    el('h2', {text: 'Queue (' + active.length + ' pending or running)'}), jobsTable(active, 'queue'),
    el('h2', {text: 'Ended in the last hour'}), jobsTable(ended, 'ended'),
    queue.truncated ? el('p', {class: 'muted', text: 'Only the first jobs are shown.'}) : null,
    events ? el('h2', {text: 'Events (newest first)'}) : null, events ? eventsTable(events.events || []) : null);
}

// --- a node's page -------------------------------------------------------------
function topologyMatrix(topo) {
  if (!topo || !topo.gpus || !topo.gpus.length) return el('p', {class: 'muted', id: 'topology', text: 'No GPUs.'});
  const n = topo.gpus.length;
  const t = el('table', {class: 'matrix', id: 'topology'},
    el('tr', {}, el('th', {text: ''}), ...topo.gpus.map(g => el('th', {text: 'GPU' + g.index}))));
  for (let i = 0; i < n; i++) {
    const row = el('tr', {}, el('th', {text: 'GPU' + i}));
    for (let k = 0; k < n; k++) {
      const v = topo.gpu_links[i][k];
      row.append(el('td', {class: i === k ? 'self' : /^NV/.test(v) ? 'nv' : '', text: v}));
    }
    t.append(row);
  }
  return t;
}

function gpuTable(topo) {
  const t = el('table', {id: 'gpus'},
    el('tr', {}, ...['GPU', 'MODEL', 'MEMORY', 'PCI', 'NUMA'].map(h => el('th', {text: h}))));
  for (const g of (topo && topo.gpus) || []) {
    t.append(el('tr', {}, el('td', {text: g.index}), el('td', {text: g.model || ''}),
      el('td', {class: 'num', text: g.memory_bytes ? (g.memory_bytes / 2 ** 30).toFixed(0) + ' GiB' : ''}),
      el('td', {text: g.pci_bus_id || ''}), el('td', {text: g.numa === null ? '' : g.numa})));
  }
  return t;
}

function conditionsList(h) {
  const c = h.conditions || [];
  if (!c.length) return el('p', {class: 'muted', id: 'conditions', text: 'No active health condition on ' + h.node + '.'});
  return el('ul', {id: 'conditions', class: 'error'}, ...c.map(x =>
    el('li', {'data-condition': x.name, text: (x.gpu === null ? 'the node' : 'GPU ' + x.gpu) + ': ' + x.name + ' — ' + x.text +
      (x.since ? ' (since ' + fmtTime(x.since) + ')' : '')})));
}

function historyCharts(h) {
  const box = el('div', {class: 'charts', id: 'history'});
  if (!h.gpus || !h.gpus.length) {
    box.append(el('p', {class: 'muted', text: 'No GPU samples on ' + h.node + ' (GPU health sampling is off there, or no NVML).'}));
    return box;
  }
  const pts = (g, key, f) => g.time_ms.map((t, k) => [t, f ? f(g[key][k]) : g[key][k]]);
  const name = g => 'GPU ' + g.gpu;
  box.append(lineChart('Temperature, °C (the last hour)', h.gpus.map(g => ({name: name(g), points: pts(g, 'temp_c')})), 100, '°'));
  box.append(lineChart('Utilisation, %', h.gpus.map(g => ({name: name(g), points: pts(g, 'util_gpu_pct')})), 100, '%'));
  const maxW = Math.max(100, ...h.gpus.flatMap(g => g.power_mw.map(p => p / 1000)));
  box.append(lineChart('Power, W', h.gpus.map(g => ({name: name(g), points: pts(g, 'power_mw', p => p / 1000)})), Math.ceil(maxW), 'W'));
  return box;
}

async function showNode(gen, name) {
  const n = await api('/api/node/' + encodeURIComponent(name));
  let hist = null, histErr = null;
  try { hist = await api('/api/node/' + encodeURIComponent(name) + '/history'); } catch (e) { histErr = e.message; }
  if (gen !== generation) return;
  const drains = (n.gpu_drains || []).map(g => el('li', {text: 'GPU ' + g.gpu + ' ' + g.state + ': ' + g.reason + (g.by ? ' (' + g.by + ')' : '')}));
  setMain(
    el('h2', {id: 'node-title', 'data-node': n.name, 'data-state': n.state}, 'Node ' + n.name + ' ',
       el('span', {class: 'badge ' + n.state, text: n.state})),
    el('p', {}, 'Site ' + n.site + ' · ' + n.gpus_free + ' of ' + n.gpus_total + ' GPUs free',
       n.reason ? ' · ' + n.reason + (n.reason_by ? ' (' + n.reason_by + ')' : '') : '',
       n.since ? ' · since ' + fmtTime(n.since) : ''),
    drains.length ? el('ul', {}, ...drains) : null,
    el('h2', {text: 'GPU topology (links between GPUs, as jz node prints them)'}), topologyMatrix(n.topology),
    el('p', {class: 'muted', text: 'X = self, NV# = # NVLinks, PIX/PXB = through PCIe switches, PHB = through a host bridge, NODE = within a NUMA node, SYS = across NUMA nodes.'}),
    gpuTable(n.topology),
    el('h2', {text: 'GPU health'}), hist ? conditionsList(hist) : null,
    hist ? historyCharts(hist) : el('p', {class: 'error', id: 'history', text: histErr}),
    el('h2', {text: 'Jobs on ' + n.name + ' (running, and ended in the last hour)'}), jobsTable(n.jobs || [], 'node-jobs'));
}

// --- the loop -------------------------------------------------------------------
function noToken(msg) {
  setMain(el('div', {class: 'login', id: 'login'},
    el('h2', {text: 'A token is needed'}),
    el('p', {text: msg || 'This dashboard shows what jz shows you, so it needs to know who you are.'}),
    el('p', {}, 'Run ', el('code', {text: 'jz web'}), ' on a node of the network and open the address it prints.')));
}

async function refresh() {
  const gen = ++generation;
  clearTimeout(timer);
  if (!token) { noToken(); return; }
  const route = location.hash.replace(/^#/, '') || '/';
  try {
    const st = await api('/api/status');
    me = st;
    document.getElementById('summary').textContent =
      st.nodes_up + '/' + st.nodes_total + ' nodes up · ' + st.jobs_active + ' jobs pending or running · leader ' + (st.leader || 'none');
    document.getElementById('who').textContent = st.user + ' (' + st.role + ') on ' + st.controller;
    const p = document.getElementById('problem');
    p.hidden = !st.problem;
    p.textContent = st.problem || '';
    const m = /^\/node\/(.+)$/.exec(route);
    if (m) await showNode(gen, decodeURIComponent(m[1]));
    else await showOverview(gen);
    document.getElementById('updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem('jazari.token');
      token = null;
      noToken(e.message);
      return;
    }
    document.getElementById('updated').textContent = 'Could not update: ' + e.message;
  }
  if (gen === generation) timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener('hashchange', () => { if (/token=/.test(location.hash)) takeToken(); refresh(); });
takeToken();
refresh();
