# anisotropic (nonstationary, Paciorek) GP with local metric from structure tensor of a pilot field
from common import *
from gp import gp
from scipy.ndimage import gaussian_filter
import sys, time
X=coords(); obs,oi,fi,vi=masks(); un=np.nonzero(~obs)[0]
def metric(pilot,l,alpha,eps,rho):
    u=pilot.reshape(N,N,3)
    gy,gx=np.gradient(u,axis=(0,1))
    Jxx=gaussian_filter((gx*gx).sum(2),rho); Jyy=gaussian_filter((gy*gy).sum(2),rho); Jxy=gaussian_filter((gx*gy).sum(2),rho)
    tr=Jxx+Jyy; det=Jxx*Jyy-Jxy**2; disc=np.sqrt(np.maximum(tr*tr/4-det,0))
    l1=tr/2+disc; l2=np.maximum(tr/2-disc,0)
    th=0.5*np.arctan2(2*Jxy,Jxx-Jyy)       # gradient direction (x,y)
    e=((l1+eps)/(l2+eps))**(alpha/2)          # elongation >=1
    c,s=np.cos(th),np.sin(th)
    a1=(l/e)**2; a2=(l*e)**2                  # across edge short, along edge long
    Sxx=a1*c*c+a2*s*s; Syy=a1*s*s+a2*c*c; Sxy=(a1-a2)*c*s
    return np.stack([Sxx.ravel(),Sxy.ravel(),Syy.ravel()],1)  # per pixel (row-major)
def kmat(XA,SA,XB,SB,nu):
    # Paciorek nonstationary kernel, Sigma as (xx,xy,yy)
    axx=(SA[:,None,0]+SB[None,:,0])/2; axy=(SA[:,None,1]+SB[None,:,1])/2; ayy=(SA[:,None,2]+SB[None,:,2])/2
    dA=SA[:,0]*SA[:,2]-SA[:,1]**2; dB=SB[:,0]*SB[:,2]-SB[:,1]**2
    dm=axx*ayy-axy**2
    dx=XA[:,None,0]-XB[None,:,0]; dy=XA[:,None,1]-XB[None,:,1]
    Q=(ayy*dx*dx-2*axy*dx*dy+axx*dy*dy)/dm
    pref=(dA[:,None]**0.25)*(dB[None,:]**0.25)/np.sqrt(dm)
    r=np.sqrt(np.maximum(Q,0))
    if nu==0.5: k=np.exp(-r)
    elif nu==1.5: k=(1+np.sqrt(3)*r)*np.exp(-np.sqrt(3)*r)
    else: k=np.exp(-0.5*Q)
    return pref*k
def agp(Y,tr,pilot,l,alpha,eps,rho,noise,nu=0.5,chunk=4096):
    S=metric(pilot,l,alpha,eps,rho); Yf=Y.reshape(-1,3); mu=Yf[tr].mean(0)
    K=kmat(X[tr],S[tr],X[tr],S[tr],nu)+noise*np.eye(len(tr))
    a=np.linalg.solve(K,Yf[tr]-mu)
    out=np.empty((N*N,3))
    for s in range(0,N*N,chunk):
        out[s:s+chunk]=mu+kmat(X[s:s+chunk],S[s:s+chunk],X[tr],S[tr],nu)@a
    return out
if __name__=="__main__":
    for n in sys.argv[1:]:
        Y=load(n); D=delaunay(Y,oi); base=psnr(D,Y,un); Df=delaunay(Y,fi)
        t0=time.time()
        for alpha in [0,0.5,1.0]:
          for eps in [1e-4,1e-3]:
            for l in [0.03,0.05]:
                P=agp(Y,fi,Df,l,alpha,eps,1.5,1e-3)
                Pa=agp(Y,oi,D,l,alpha,eps,1.5,1e-3)
                print(f"{n} a={alpha} eps={eps} l={l} val {psnr(P,Y,vi):.2f} unobs(fit) {psnr(P,Y,un):.2f} unobs(all) {psnr(Pa,Y,un):.2f} del {base:.2f}  {time.time()-t0:.0f}s",flush=True)
