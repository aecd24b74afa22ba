/**
 * The dashboard page at `/`: a shell with no data in it (so it is served without the token);
 * dashboard.js fills it from the event stream. Relative URLs only, so it works over HTTPS and
 * behind a path prefix.
 */
export const DASHBOARD_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hearsay</title>
<link rel="stylesheet" href="dashboard.css">
<link rel="icon" href="data:,">
</head>
<body>
<header class="top">
<h1>hearsay <span id="node-name"></span></h1>
<span class="live off" id="live"><span id="live-text">connecting</span></span>
<span class="spacer"></span>
<span id="updated"></span>
<button type="button" id="token-button">token</button>
</header>
<main>
<section class="tiles" id="tiles"></section>
<h2>Members</h2>
<section class="cards" id="members"></section>
<h2>Who sees whom</h2>
<section class="panel" id="matrix"></section>
<h2>Partitions</h2>
<section class="panel">
<canvas id="partition-canvas"></canvas>
<p class="muted" id="partition-caption"></p>
<p class="legend"><span><i class="held"></i>replica, alive</span><span><i class="down"></i>replica, not alive</span><span><i class="hint"></i>not alive, hints waiting</span><span><i class="sync"></i>syncing now</span><span><i class="none"></i>not a replica</span></p>
</section>
<h2>Node lifecycle</h2>
<section class="panel">
<table><thead><tr><th>member</th><th>operation</th><th>since</th><th>progress</th></tr></thead><tbody id="lifecycle"></tbody></table>
</section>
<h2>Anti-entropy rounds (this node)</h2>
<section class="panel">
<table><thead><tr><th>ended</th><th>trigger</th><th>peers</th><th>partitions differing</th><th>records</th><th>bytes moved</th><th>took</th><th>result</th></tr></thead><tbody id="rounds"></tbody></table>
</section>
<h2>Keys</h2>
<section class="browser">
<div class="panel">
<form id="scan-form"><input id="prefix" placeholder="key prefix (empty: all keys)" autocomplete="off"><button type="submit">Scan</button></form>
<table><thead><tr><th>key</th><th>version</th><th>size</th></tr></thead><tbody id="keys"></tbody></table>
<p class="muted"><span id="scan-status">Scan a prefix to list keys.</span> <button type="button" id="scan-more" hidden>more</button></p>
</div>
<div class="panel" id="key-detail"><p class="muted">Pick a key to see its value and which replica holds which version.</p></div>
</section>
<p class="muted">JSON: <a href="status">/status</a> · <a href="members">/members</a> · <a href="metrics">/metrics</a> (with the token, if one is set)</p>
</main>
<div id="token-dialog" hidden>
<form id="token-form"><label id="token-message" for="token-input">Bearer token</label><input id="token-input" type="password" autocomplete="current-password"><button type="submit">Connect</button></form>
</div>
<script src="dashboard.js"></script>
</body>
</html>
`
