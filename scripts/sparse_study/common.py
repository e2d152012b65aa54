import os
os.environ.setdefault("OMP_NUM_THREADS","1"); os.environ.setdefault("OPENBLAS_NUM_THREADS","1")
import numpy as np
from PIL import Image
from scipy.interpolate import griddata
N=128
def load(name):
    if name=='chelsea_ref':
        here=os.path.dirname(os.path.abspath(__file__))
        path=os.path.join(here,'..','..','..','shared','reference','chelsea_128.png')
        im=np.asarray(Image.open(path).convert('RGB'))
    else:
        import skimage.data as d
        a=getattr(d,name)()[...,:3]
        h,w=a.shape[:2]; s=min(h,w); t=(h-s)//2; l=(w-s)//2
        im=np.asarray(Image.fromarray(a[t:t+s,l:l+s]).resize((N,N),Image.LANCZOS))
    return im.astype(np.float64)/255.0
def masks():
    obs=np.random.RandomState(0).rand(N*N)<0.1
    oi=np.nonzero(obs)[0]
    val=np.random.RandomState(1).rand(len(oi))<0.1
    return obs, oi, oi[~val], oi[val]   # obs mask, observed idx, fit idx, val idx
def coords():
    r,c=np.divmod(np.arange(N*N),N)
    return np.stack([c/N, r/N],1)
def psnr(pred,Y,idx):
    p=np.clip(pred.reshape(-1,3)[idx],0,1); return -10*np.log10(np.mean((p-Y.reshape(-1,3)[idx])**2))
def delaunay(Y,idx,kind='linear'):
    X=coords(); Yf=Y.reshape(-1,3)
    out=griddata(X[idx],Yf[idx],X,method=kind)
    nn=griddata(X[idx],Yf[idx],X,method='nearest')
    bad=np.isnan(out); out[bad]=nn[bad]; return out
IMAGES=['chelsea_ref','astronaut','coffee','rocket','chelsea','immunohistochemistry','retina','hubble_deep_field']
