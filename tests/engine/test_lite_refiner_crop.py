import numpy as np

from tnseg_desktop.engine.lite_refiner import LiteRefiner
from tnseg_desktop.engine.refiner_base import Prompts
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.prompts import Click


def test_no_zoom_until_the_object_is_known():
    refiner = LiteRefiner(TnsegLite(base_channels=8, head_hidden=16, input_size=64))
    shape = (360, 560)
    one_click = Prompts([Click(180, 280, True)])
    # empty or missing prior and no box: the whole frame, so the nodule is not cut
    assert refiner.crop_for(shape, None, one_click) is None
    assert refiner.crop_for(shape, np.zeros(shape, bool), one_click) is None
    # once there is a mask, the network zooms in around it
    prior = np.zeros(shape, bool)
    prior[150:200, 250:300] = True
    crop = refiner.crop_for(shape, prior, one_click)
    assert crop is not None
    r0, c0, r1, c1 = crop
    assert r0 <= 150 and c0 <= 250 and r1 >= 200 and c1 >= 300 and (r1 - r0) < 360
