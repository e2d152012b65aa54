#!/usr/bin/env python3
"""Sparse (10%) reconstruction study: baselines + winner (anisotropic / steered nonstationary GP) + runner-up (Fourier MLP + stochastic TV).
usage: OMP_NUM_THREADS=1 nice -n 10 python3 sparse.py IMAGE [--mlp] [--json out.jsonl]
IMAGE: chelsea_ref (=../shared/reference/chelsea_128.png beside the repository) or a skimage.data name (centre square crop, PIL LANCZOS to 128x128).
Protocol: obs = RandomState(0).rand(128*128)<0.1 (row-major); val = RandomState(1).rand(n_obs)<0.1 over observed idx (ascending);
fit on obs\\val, select by val PSNR, report PSNR on unobserved pixels (clip [0,1]); then refit on all observed with the selected settings (labelled)."""
import os, sys, json, time
os.environ.setdefault("OMP_NUM_THREADS","1"); os.environ.setdefault("OPENBLAS_NUM_THREADS","1")
import numpy as np
from common import load, masks, coords, psnr, delaunay, N
from agp import agp, metric, kmat          # winner implementation (see agp.py; ~60 lines)
from gp import gp                           # isotropic Matérn GP

X=coords(); obs,oi,fi,vi=masks(); un=np.nonzero(~obs)[0]
ZERO=np.zeros((N*N,3))
# ---- winner hyper-parameters -------------------------------------------------------------
EPS=3e-3; RHO=1.5; NOISE=1e-3; PILOT_L=0.05; MAXIT=6
GRID=[(a,l) for a in (0.5,0.7) for l in (0.05,0.08)]
def agp_chain(Y,tr,a,l,iters):
    P=agp(Y,tr,ZERO,PILOT_L,0.0,EPS,RHO,NOISE)     # iteration 0: isotropic pilot (alpha=0 -> Matérn-1/2, l=0.05); no Delaunay needed
    outs=[]
    for it in range(iters): P=agp(Y,tr,P,l,a,EPS,RHO,NOISE); outs.append(P)
    return outs
def run(name, do_mlp=False):
    Y=load(name); R={'image':name}; t0=time.time()
    R['delaunay_linear']=psnr(delaunay(Y,oi),Y,un); R['delaunay_cubic']=psnr(delaunay(Y,oi,'cubic'),Y,un)
    R['delaunay_linear_fitonly']=psnr(delaunay(Y,fi),Y,un)
    # isotropic GP, selected by val
    best=max(((psnr(P,Y,vi),psnr(P,Y,un),nu,l,nz) for nu in (0.5,1.5) for l in (0.02,0.04,0.08) for nz in (1e-3,1e-2)
              for P in [gp(Y,fi,l,nu,nz)]))
    R['gp_iso']=dict(sel=dict(nu=best[2],l=best[3],noise=best[4]),val=best[0],unobs_fit=best[1],unobs_refit=psnr(gp(Y,oi,best[3],best[2],best[4]),Y,un))
    # winner: steered GP, select (alpha,l,iterations) by val
    res=[]
    for a,l in GRID:
        for it,P in enumerate(agp_chain(Y,fi,a,l,MAXIT),1): res.append((psnr(P,Y,vi),psnr(P,Y,un),a,l,it))
    v,u,a,l,it=max(res)
    Pall=agp_chain(Y,oi,a,l,it)[-1]
    R['agp']=dict(sel=dict(alpha=a,l=l,iters=it,eps=EPS,rho=RHO,noise=NOISE),val=v,unobs_fit=u,unobs_refit=psnr(Pall,Y,un),
                  oracle_fit=max(r[1] for r in res))
    # fixed default (no selection at all): alpha=0.7, l=0.08, 5 iterations
    R['agp_fixed']=dict(unobs_fit=[r[1] for r in res if r[2:]==(0.7,0.08,5)][0], unobs_refit=psnr(agp_chain(Y,oi,0.7,0.08,5)[-1],Y,un))
    if do_mlp:
        from mlp import train
        res=[]
        for s in (3,5):
            for tv in (0.01,0.03):
                r=train(Y,fi,sigma=s,steps=400,tv=tv,every=10); res.append((r['best_val'],psnr(r['pred'],Y,un),s,tv,r['best_step']))
        v,u,s,tv,st=max(res); r=train(Y,oi,sigma=s,steps=st,tv=tv,every=10**9)
        R['mlp_tv']=dict(sel=dict(sigma=s,tv=tv,steps=st),val=v,unobs_fit=u,unobs_refit=psnr(r['last'],Y,un))
    R['seconds']=time.time()-t0
    return R
if __name__=="__main__":
    args=sys.argv[1:]; do_mlp='--mlp' in args; out=None
    if '--json' in args: out=args[args.index('--json')+1]; args.remove('--json'); args.remove(out)
    for n in [a for a in args if not a.startswith('--')]:
        R=run(n,do_mlp); d=R['delaunay_linear']
        print(f"{n:22s} delaunay {d:.2f} | gp_iso fit {R['gp_iso']['unobs_fit']:.2f} refit {R['gp_iso']['unobs_refit']:.2f} | "
              f"AGP sel {R['agp']['sel']['alpha']},{R['agp']['sel']['l']},it{R['agp']['sel']['iters']} fit {R['agp']['unobs_fit']:.2f} [{R['agp']['unobs_fit']-d:+.2f}] "
              f"refit {R['agp']['unobs_refit']:.2f} [{R['agp']['unobs_refit']-d:+.2f}] | fixed fit {R['agp_fixed']['unobs_fit']:.2f} refit {R['agp_fixed']['unobs_refit']:.2f} "
              + (f"| MLP+TV fit {R['mlp_tv']['unobs_fit']:.2f} refit {R['mlp_tv']['unobs_refit']:.2f}" if do_mlp else '') + f" ({R['seconds']:.0f}s)",flush=True)
        if out: open(out,'a').write(json.dumps(R)+'\n')
