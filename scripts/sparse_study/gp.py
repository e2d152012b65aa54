from common import *
from scipy.spatial.distance import cdist
import sys
X=coords(); obs,oi,fi,vi=masks(); un=np.nonzero(~obs)[0]
def kern(D,l,nu):
    r=D/l
    if nu==0.5: return np.exp(-r)
    if nu==1.5: return (1+np.sqrt(3)*r)*np.exp(-np.sqrt(3)*r)
    if nu==2.5: return (1+np.sqrt(5)*r+5/3*r*r)*np.exp(-np.sqrt(5)*r)
    if nu==np.inf: return np.exp(-0.5*r*r)
def gp(Y,tr,l,nu,noise):
    Yf=Y.reshape(-1,3); mu=Yf[tr].mean(0)
    K=kern(cdist(X[tr],X[tr]),l,nu)+noise*np.eye(len(tr))
    a=np.linalg.solve(K,Yf[tr]-mu)
    return mu+kern(cdist(X,X[tr]),l,nu)@a
def _main():
  ims=sys.argv[1:] or IMAGES
  for n in ims:
      Y=load(n); Yf=Y.reshape(-1,3); base=psnr(delaunay(Y,oi),Y,un)
      best=None; res=[]
      for nu in [0.5,1.5,2.5]:
          for l in [0.01,0.02,0.04,0.08,0.16]:
              for noise in [1e-3,1e-2,1e-1]:
                  P=gp(Y,fi,l,nu,noise); v=psnr(P,Y,vi); u=psnr(P,Y,un)
                  res.append((v,u,nu,l,noise))
      res.sort(reverse=True); v,u,nu,l,noise=res[0]
      orc=max(r[1] for r in res)
      Pall=gp(Y,oi,l,nu,noise); ua=psnr(Pall,Y,un)
      print(f"{n:22s} delaunay {base:.2f} | GP sel nu={nu} l={l} noise={noise} val={v:.2f} unobs(fit)={u:.2f} refit={ua:.2f} margin={ua-base:+.2f} oracle={orc:.2f}",flush=True)

if __name__=="__main__": _main()
