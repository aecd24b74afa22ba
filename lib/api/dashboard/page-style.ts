/**
 * The dashboard's stylesheet, served at /dashboard.css (the page allows no inline style).
 */
export const DASHBOARD_CSS = String.raw`:root{--bg:#f3f5f8;--panel:#fff;--ink:#1d2733;--muted:#6b7785;--line:#e3e8ee;--alive:#2a9d8f;--suspect:#f4a261;--dead:#e63946;--left:#9aa5b1;--accent:#264653}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
.top{display:flex;align-items:center;gap:1em;padding:.8em 1.6em;background:var(--accent);color:#fff}
.top h1{font-size:1.25em;margin:0;font-weight:600;letter-spacing:.02em}
.top h1 span{font-weight:400;opacity:.75}
.top .spacer{flex:1}
.top button{background:transparent;border:1px solid rgba(255,255,255,.5);color:#fff;border-radius:6px;padding:.3em .8em;cursor:pointer}
.live{display:inline-flex;align-items:center;gap:.4em;font-size:.9em}
.live::before{content:"";width:.6em;height:.6em;border-radius:50%;background:#ccc}
.live.on::before{background:#7ee2a8;box-shadow:0 0 0 3px rgba(126,226,168,.3)}
.live.off::before{background:#f4a261}
#updated{opacity:.7;font-size:.85em}
main{padding:1.2em 1.6em 3em;max-width:1400px;margin:0 auto}
h2{font-size:1em;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);margin:1.8em 0 .6em;font-weight:600}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.8em}
.tile{background:var(--panel);border-radius:10px;padding:.8em 1em;border-left:4px solid var(--line);box-shadow:0 1px 2px rgba(0,0,0,.04)}
.tile.good{border-left-color:var(--alive)}.tile.warn{border-left-color:var(--suspect)}.tile.bad{border-left-color:var(--dead)}
.tile-value{font-size:1.6em;font-weight:600}
.tile-label{color:var(--muted);font-size:.85em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:.9em}
.card{background:var(--panel);border-radius:10px;padding:.9em 1.1em;box-shadow:0 1px 2px rgba(0,0,0,.05);border-top:4px solid var(--alive)}
.card.state-suspect{border-top-color:var(--suspect)}
.card.state-dead{border-top-color:var(--dead);background:#fdf3f4}
.card.state-left{border-top-color:var(--left);opacity:.7}
.card header{display:flex;align-items:center;gap:.5em}
.card h3{margin:0;font-size:1.1em;flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.dot{width:.65em;height:.65em;border-radius:50%;background:var(--alive);flex:none;display:inline-block}
.state-suspect .dot,.cell-suspect .dot{background:var(--suspect)}
.state-dead .dot,.cell-dead .dot{background:var(--dead)}
.state-left .dot,.cell-left .dot{background:var(--left)}
.badge{font-size:.75em;color:var(--muted);border:1px solid var(--line);border-radius:999px;padding:0 .5em}
.pill{font-size:.75em;border-radius:999px;padding:.05em .6em;color:#fff;background:var(--alive);font-weight:600}
.pill-suspect{background:var(--suspect)}.pill-dead{background:var(--dead)}.pill-left,.pill-unknown{background:var(--left)}
.card dl{display:grid;grid-template-columns:auto 1fr;gap:.1em .8em;margin:.7em 0}
.card dt{color:var(--muted)}.card dd{margin:0}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.sparks{display:grid;grid-template-columns:1fr 1fr;gap:.8em}
.spark-label{font-size:.8em;color:var(--muted)}.spark-label b{color:var(--ink)}
.spark{width:100%;height:38px;display:block}
.spark-line{fill:none;stroke-width:1.6;vector-effect:non-scaling-stroke}
.spark.ops .spark-line{stroke:#2a9d8f}.spark.ops .spark-area{fill:rgba(42,157,143,.15)}
.spark.p99 .spark-line{stroke:#7b61ff}.spark.p99 .spark-area{fill:rgba(123,97,255,.13)}
.spark-empty{stroke:var(--line);stroke-dasharray:3 3}
.card-error{color:#b5303c;font-size:.85em;margin:.5em 0 0}
.panel{background:var(--panel);border-radius:10px;padding:1em 1.1em;box-shadow:0 1px 2px rgba(0,0,0,.05);overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .7em;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{color:var(--muted);font-weight:600;font-size:.85em}
.matrix td small{display:block;color:var(--muted);font-size:.78em}
.matrix td .dot{margin-right:.35em}
.cell-dead{background:#fdf0f1}.cell-suspect{background:#fff6ec}
tr.failed td{color:#b5303c}
.muted{color:var(--muted)}
.legend{display:flex;gap:1.2em;flex-wrap:wrap;font-size:.85em;color:var(--muted);margin:.6em 0 0}
.legend i{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:-1px}
.legend .held{background:#2a9d8f}.legend .down{background:#e76f51}.legend .hint{background:#e63946}.legend .sync{background:#f4a261}.legend .none{background:#e9edf2}
.browser{display:grid;grid-template-columns:minmax(280px,1fr) minmax(320px,1.2fr);gap:1em}
.browser form{display:flex;gap:.5em;margin-bottom:.6em}
input{flex:1;padding:.45em .7em;border:1px solid var(--line);border-radius:6px;font:inherit}
button{padding:.45em 1em;border-radius:6px;border:0;background:var(--accent);color:#fff;font:inherit;cursor:pointer}
.key-row{cursor:pointer}.key-row:hover{background:#f5f8fb}.key-row.selected{background:#e6f4f2}
pre.value{background:#f6f8fa;border-radius:6px;padding:.7em;max-height:14em;overflow:auto;white-space:pre-wrap;word-break:break-all}
.stale{color:#b5303c;font-weight:600}.fresh{color:#2a7f62}
.holds-tombstone,.holds-absent,.holds-error{color:#b5303c}
#token-dialog{position:fixed;inset:0;background:rgba(20,30,40,.45);display:flex;align-items:center;justify-content:center}
#token-dialog[hidden]{display:none}
#token-dialog form{background:#fff;padding:1.4em;border-radius:10px;min-width:340px;display:flex;flex-direction:column;gap:.7em}
@media (max-width:800px){.browser{grid-template-columns:1fr}}
`
