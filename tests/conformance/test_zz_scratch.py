import time
from tests.conformance import clients as c
from tests.conformance.clients import AM, GG, OC, OR, Mode
T=[time.perf_counter()]
async def test_a(mesh):
    t=time.perf_counter(); print("setup", t-T[0])
    await mesh.send(Mode(OC), AM, c.body_for(OC, [c.user("hi")]))
    t2=time.perf_counter(); print("req", t2-t); T[0]=t2
async def test_b(mesh):
    t=time.perf_counter(); print("teardown+setup", t-T[0])
    await mesh.send(Mode(OC), AM, c.body_for(OC, [c.user("hi")]))
    t2=time.perf_counter(); print("req", t2-t); T[0]=t2
async def test_c(mesh):
    t=time.perf_counter(); print("teardown+setup", t-T[0])
