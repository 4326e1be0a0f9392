import zlib, struct, array
M=(1<<64)-1
def phase(seed):
    x=seed; out=array.array('Q',[0])*(1<<19)
    for i in range(1<<19):
        x^=(x<<13)&M; x^=x>>7; x^=(x<<17)&M
        out[i]=x
    b=out.tobytes()  # little endian host
    crc=zlib.crc32(b)&0xffffffff
    a=sorted(array.array("I",b[:2<<20]))
    h=0x811C9DC5
    for v in a: h=((h^v)*0x01000193)&0xffffffff
    return crc,h
for name,s in (("ring0",0x2545F4914F6CDD1D),("ring3",0x9E3779B97F4A7C15)):
    c,h=phase(s); print(f"{name} crc32={c:08x} sorted={h:08x}")
print("cpubench done")
