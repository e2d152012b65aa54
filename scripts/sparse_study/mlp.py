from common import *
import sys, time
X=coords(); obs,oi,fi,vi=masks(); un=np.nonzero(~obs)[0]
class Adam:
    def __init__(s,params,lr): s.p=params; s.lr=lr; s.m=[np.zeros_like(p) for p in params]; s.v=[np.zeros_like(p) for p in params]; s.t=0
    def step(s,grads,lr=None):
        s.t+=1; lr=lr or s.lr; b1,b2=0.9,0.999
        for p,g,m,v in zip(s.p,grads,s.m,s.v):
            m*=b1; m+=(1-b1)*g; v*=b2; v+=(1-b2)*g*g
            p-=lr*(m/(1-b1**s.t))/(np.sqrt(v/(1-b2**s.t))+1e-8)
def init(rng,sigma,nf=128,h1=128,h2=256):
    B=rng.randn(2,nf)*sigma
    def lin(i,o):
        k=1/np.sqrt(i); return rng.uniform(-k,k,(i,o)), rng.uniform(-k,k,o)
    W1,b1=lin(2*nf,h1); W2,b2=lin(h1,h2); W3,b3=lin(h2,3)
    return B,[W1,b1,W2,b2,W3,b3]
def feats(Xc,B,fmask=None):
    z=2*np.pi*Xc@B; F=np.concatenate([np.sin(z),np.cos(z)],1)
    if fmask is not None: F=F*np.concatenate([fmask,fmask])
    return F
def forward(F,P):
    W1,b1,W2,b2,W3,b3=P
    a1=F@W1+b1; h1=np.maximum(a1,0); a2=h1@W2+b2; h2=np.maximum(a2,0); o=h2@W3+b3
    y=1/(1+np.exp(-o)); return y,(F,a1,h1,a2,h2,y)
def backward(dy,cache,P):
    F,a1,h1,a2,h2,y=cache; W1,b1,W2,b2,W3,b3=P
    do=dy*y*(1-y); gW3=h2.T@do; gb3=do.sum(0)
    dh2=do@W3.T; dh2[a2<=0]=0; gW2=h1.T@dh2; gb2=dh2.sum(0)
    dh1=dh2@W2.T; dh1[a1<=0]=0; gW1=F.T@dh1; gb1=dh1.sum(0)
    return [gW1,gb1,gW2,gb2,gW3,gb3]
def tv_grad(img,eps=1e-3,kind='tv'):
    # img N,N,3 ; returns penalty value (mean over pixels) and gradient wrt img
    gx=np.zeros_like(img); gy=np.zeros_like(img)
    gx[:,:-1]=img[:,1:]-img[:,:-1]; gy[:-1]=img[1:]-img[:-1]
    if kind=='tv':
        r=np.sqrt(gx**2+gy**2+eps**2); val=r.mean(); ax=gx/r; ay=gy/r
    else: # squared gradient
        val=(gx**2+gy**2).mean(); ax=2*gx; ay=2*gy
    d=np.zeros_like(img)
    d[:,:-1]-=ax[:,:-1]; d[:,1:]+=ax[:,:-1]; d[:-1]-=ay[:-1]; d[1:]+=ay[:-1]
    return val, d/img.size
def train(Y,tr,sigma=5,steps=2000,lr=1e-3,seed=0,tv=0.0,tvkind='tv',tvK=1024,c2f=0,every=10,nf=128,wd=0.0,eps=1e-2,val=None,track_unobs=False):
    """stochastic TV: tvK random pixels + right/down neighbours rendered per step.
    c2f: steps over which freqs (sorted by |b|) are masked in. returns best-val prediction."""
    val=vi if val is None else val
    rng=np.random.RandomState(seed); B,P=init(rng,sigma,nf); rs=np.random.RandomState(seed+1000)
    Yf=Y.reshape(-1,3); opt=Adam(P,lr)
    nrm=np.linalg.norm(B,axis=0); rank=np.argsort(np.argsort(nrm))/nf
    Ftr_full=feats(X[tr],B); Fval_full=feats(X[val],B)
    best=(-1,None,None); hist=[]
    for t in range(1,steps+1):
        if c2f>0:
            fm=np.clip((min(1.0,t/c2f)*1.2-rank)/0.2,0,1); fm2=np.concatenate([fm,fm])
        else: fm=None; fm2=1.0
        Ftr=Ftr_full*fm2
        y,c=forward(Ftr,P); dy=2*(y-Yf[tr])/y.size
        g=backward(dy,c,P)
        if tv>0:
            r=rs.randint(0,N-1,tvK); cc=rs.randint(0,N-1,tvK)
            pts=np.concatenate([np.stack([cc,r],1),np.stack([cc+1,r],1),np.stack([cc,r+1],1)])/N
            F=feats(pts,B,fm); ya,ca=forward(F,P)
            y0,yx,yy=ya[:tvK],ya[tvK:2*tvK],ya[2*tvK:]
            gx=yx-y0; gy=yy-y0
            if tvkind=='tv':
                rr=np.sqrt((gx**2+gy**2).sum(1,keepdims=True)+eps**2); ax=gx/rr; ay=gy/rr
            else: ax=2*gx; ay=2*gy
            d=np.concatenate([-(ax+ay),ax,ay])/tvK
            ga=backward(tv*d,ca,P); g=[a+b for a,b in zip(g,ga)]
        if wd>0: g=[gg+wd*p for gg,p in zip(g,P)]
        opt.step(g)
        if t%every==0:
            yv,_=forward(Fval_full*fm2,P); v=-10*np.log10(np.mean((np.clip(yv,0,1)-Yf[val])**2))
            u=np.nan
            if track_unobs and t%(every*5)==0:
                ya,_=forward(feats(X,B,fm),P); u=psnr(ya,Y,un)
            hist.append((t,v,u))
            if v>best[0]:
                ya,_=forward(feats(X,B,fm),P); best=(v,t,ya)
    ya,_=forward(feats(X,B,fm),P)
    return dict(hist=np.array(hist),best_val=best[0],best_step=best[1],pred=best[2],last=ya)
if __name__=="__main__":
    n=sys.argv[1]; Y=load(n); base=psnr(delaunay(Y,oi),Y,un)
    for sigma in [2,3,5]:
        t0=time.time(); r=train(Y,fi,sigma=sigma,steps=1500)
        h=r['hist']; print(f"{n} sigma={sigma} sel step {r['best_step']} val {r['best_val']:.2f} unobs {psnr(r['pred'],Y,un):.2f} oracle {h[:,2].max():.2f}@{int(h[h[:,2].argmax(),0])} del {base:.2f} time {time.time()-t0:.0f}s",flush=True)
