"""``GET /_local/dashboard``: the synthesized CloudWatch dashboard drawn in the browser.

The page holds no widget of its own: it draws what ``/_local/dashboard/data`` returns (the
template's ``DashboardBody`` resolved locally, each metric's one-minute series from the EMF the
functions printed and the metrics the runtime observed, and the template's alarms evaluated),
as inline SVG — no CDN, no library — and redraws every 10 seconds. ``?only=<text>`` draws only
the widgets whose title contains it (full width).
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn dashboard (local)</title>
<style>
 body{font:13px system-ui,sans-serif;margin:0;background:#f2f3f3;color:#16191f}
 header{background:#232f3e;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:baseline}
 header h1{font-size:16px;margin:0} header span{opacity:.8}
 #grid{display:grid;grid-template-columns:repeat(24,1fr);gap:8px;padding:8px 16px}
 .w{background:#fff;border:1px solid #d5dbdb;border-radius:2px;padding:6px 8px;overflow:hidden;min-width:0}
 .w h3{font-size:13px;margin:0 0 4px 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
 .text{background:transparent;border:0;padding:4px 0} .text h2{font-size:16px;margin:8px 0 0 0}
 .legend{display:flex;flex-wrap:wrap;gap:2px 10px;font-size:11px}
 .legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
 .empty{fill:#879596;font-size:12px} .alarm-list{list-style:none;margin:0;padding:0;columns:3;font-size:12px}
 .alarm-list li{padding:2px 0;break-inside:avoid} .st{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px}
 .ALARM{background:#d13212} .OK{background:#1d8102} .INSUFFICIENT_DATA{background:#879596}
</style></head>
<body><header><h1>Cairn dashboard</h1><span id="meta">loading…</span></header>
<div id="grid"></div>
<script>
const MINUTES=new URLSearchParams(location.search).get("minutes")||"";
const COLORS=["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
const NS="http://www.w3.org/2000/svg";
function el(tag,attrs,parent){const e=document.createElementNS(NS,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e;}
function fmt(v){if(Math.abs(v)>=1e6)return (v/1e6).toFixed(1)+"M";if(Math.abs(v)>=1e3)return (v/1e3).toFixed(1)+"k";return (+v.toFixed(2)).toString();}
function chart(w,data,t0,t1){
  const W=520,H=170,L=42,R=42,T=8,B=18;
  const svg=el("svg",{viewBox:`0 0 ${W} ${H}`,width:"100%",class:"chart"});
  const scale={};
  ["left","right"].forEach(axis=>{const vals=[];
    w.series.filter(s=>s.axis==axis).forEach(s=>s.points.forEach(p=>vals.push(p[1])));
    (w.annotations||[]).filter(a=>(a.axis||"left")==axis).forEach(a=>vals.push(a.value));
    scale[axis]={used:vals.length>0,max:Math.max(1,...vals),min:Math.min(0,...vals)};});
  const x=t=>L+(W-L-R)*(t-t0)/Math.max(1,(t1-t0));
  const y=(v,axis)=>{const s=scale[axis||"left"];return T+(H-T-B)*(1-(v-s.min)/Math.max(1e-9,(s.max-s.min)));};
  el("rect",{x:L,y:T,width:W-L-R,height:H-T-B,fill:"#fff",stroke:"#e9ebed"},svg);
  for(let i=0;i<=4;i++){const f=i/4,yy=T+(H-T-B)*(1-f);el("line",{x1:L,x2:W-R,y1:yy,y2:yy,stroke:"#e9ebed"},svg);
    [["left",L-4,"end"],["right",W-R+4,"start"]].forEach(([axis,xx,anchor])=>{const s=scale[axis];
      if(axis=="right"&&!s.used)return;const tx=el("text",{x:xx,y:yy+4,"text-anchor":anchor,"font-size":10,fill:"#545b64"},svg);
      tx.textContent=fmt(s.min+(s.max-s.min)*f);});}
  for(let i=0;i<=3;i++){const t=t0+(t1-t0)*i/3,tx=el("text",{x:x(t),y:H-4,"text-anchor":"middle","font-size":10,fill:"#545b64"},svg);
    tx.textContent=new Date(t*1000).toISOString().substr(11,5);}
  (w.annotations||[]).forEach(a=>{const yy=y(a.value,a.axis);el("line",{x1:L,x2:W-R,y1:yy,y2:yy,stroke:a.state=="ALARM"?"#d13212":"#ec7211","stroke-dasharray":"5,4",class:"threshold"},svg);});
  let drawn=0;
  w.series.forEach((s,i)=>{ if(!s.points.length)return; drawn++;
    const c=COLORS[i%COLORS.length];
    const pts=s.points.map(p=>[x(p[0]+s.period/2),y(p[1],s.axis)]);
    if(pts.length==1)el("circle",{cx:pts[0][0].toFixed(1),cy:pts[0][1].toFixed(1),r:3.5,fill:c,class:"series"},svg);
    else el("polyline",{points:pts.map(p=>p[0].toFixed(1)+","+p[1].toFixed(1)).join(" "),fill:"none",stroke:c,"stroke-width":2,class:"series"},svg);
  });
  if(!drawn){const tx=el("text",{x:(L+W-R)/2,y:H/2,"text-anchor":"middle",class:"empty"},svg);tx.textContent="No data for this time range";}
  return svg;
}
function render(data){
  const grid=document.getElementById("grid");grid.innerHTML="";
  const t1=data.generated_at,t0=t1-data.minutes*60;
  document.getElementById("meta").textContent=`${data.dashboards.length} dashboard(s) from the synthesized template · last ${data.minutes} min · ${data.emf_documents} EMF documents · ${new Date(t1*1000).toISOString().substr(11,8)} UTC`;
  const only=new URLSearchParams(location.search).get("only");
  data.dashboards.forEach(d=>d.widgets.forEach(w=>{
    if(only&&!(w.title||"").includes(only))return;
    if(only){w={...w,x:0,y:0,width:24};}
    const div=document.createElement("div");div.className="w "+w.type;
    div.style.gridColumn=`${w.x+1} / span ${w.width}`;div.style.gridRow=`${w.y+1} / span ${w.height}`;
    div.dataset.title=w.title||"";div.dataset.type=w.type;
    if(w.type=="text"){const h=document.createElement("h2");h.textContent=(w.markdown||"").replace(/^#+\s*/,"");div.appendChild(h);}
    else if(w.type=="alarm"){const h=document.createElement("h3");h.textContent=w.title||"Alarms";div.appendChild(h);
      const ul=document.createElement("ul");ul.className="alarm-list";
      w.alarms.forEach(a=>{const li=document.createElement("li");li.dataset.state=a.state;li.title=a.description;
        li.innerHTML=`<span class="st ${a.state}"></span>`;li.appendChild(document.createTextNode(`${a.id} (${a.state}${a.value==null?"":", "+fmt(a.value)} / ${a.threshold})`));ul.appendChild(li);});
      div.appendChild(ul);}
    else{const h=document.createElement("h3");h.textContent=w.title;div.appendChild(h);
      const points=w.series.reduce((n,s)=>n+s.points.length,0);div.dataset.points=points;
      div.appendChild(chart(w,data,t0,t1));
      const lg=document.createElement("div");lg.className="legend";
      w.series.forEach((s,i)=>{const sp=document.createElement("span");sp.innerHTML=`<i style="background:${COLORS[i%COLORS.length]}"></i>`;sp.appendChild(document.createTextNode(s.label+(s.axis=="right"?" (right)":"")));lg.appendChild(sp);});
      (w.annotations||[]).forEach(a=>{const sp=document.createElement("span");sp.innerHTML='<i style="background:#ec7211"></i>';sp.appendChild(document.createTextNode(`alarm ≥ ${a.value}`));lg.appendChild(sp);});
      div.appendChild(lg);}
    grid.appendChild(div);}));
  document.body.dataset.rendered="1";
}
async function refresh(){
  try{const r=await fetch("/_local/dashboard/data"+(MINUTES?"?minutes="+MINUTES:""),{cache:"no-store"});render(await r.json());}
  catch(e){document.getElementById("meta").textContent="cannot load data: "+e;}
  setTimeout(refresh,10000);
}
refresh();
</script></body></html>
"""
