"""Config mistakes reach the user as a message that names the key and the fix: typos in model, backbone and loop
keys ("did you mean"), a head smaller than the labels, a head without a size."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from petl_vision.models import ImageClassifier, PointClassifier
from petl_vision.models.config_check import check_config, check_loop_keys, check_model_keys
from petl_vision.registry import MODELS
from petl_vision.setup_env import register_all_modules

register_all_modules()
TINY = dict(model='vit_tiny_patch16_224', pretrained=None, img_size=32, patch_size=8, embed_dim=64, depth=2,
            num_heads=2, num_classes=5)


def build_model(**cfg):
    with DefaultScope.overwrite_default_scope('petl_vision'):
        return MODELS.build(dict(type='ImageClassifier', **cfg))


def test_model_key_typo_names_the_closest_key():
    with pytest.raises(TypeError, match=r"ImageClassifier \(model config\) got unknown key\(s\) 'plna' "
                                        r"\(did you mean 'plan'\?\); valid keys: backbone, data_preprocessor"):
        build_model(backbone=TINY, plna='lora')
    with pytest.raises(TypeError, match=r"'trainabel' \(did you mean 'trainable'\?\)"):
        PointClassifier(backbone={}, trainabel=['head'])


def test_backbone_key_typo_names_the_closest_timm_argument():
    with pytest.raises(TypeError, match=r"backbone \(timm 'vit_tiny_patch16_224', VisionTransformer\) got unknown "
                                        r"key\(s\) 'drop_path_rat' \(did you mean 'drop_path_rate'\?\)"):
        build_model(backbone={**TINY, 'drop_path_rat': 0.1})


def test_loop_and_model_keys_checked_on_the_merged_config():
    cfg = Config(dict(model=dict(type='ImageClassifier', backbone=TINY, plan='lora'),
                      train_cfg=dict(type='ResumableEpochBasedTrainLoop', max_epoch=3, val_interval=1),
                      val_cfg=dict(), test_cfg=dict()))
    with pytest.raises(TypeError, match=r"train_cfg \(ResumableEpochBasedTrainLoop\) got unknown key\(s\) "
                                        r"'max_epoch' \(did you mean 'max_epochs'\?\)"):
        check_config(cfg)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=3, val_intervl=1)
    with pytest.raises(TypeError, match=r"train_cfg \(EpochBasedTrainLoop\).*'val_intervl' \(did you mean "
                                        r"'val_interval'\?\)"):
        check_loop_keys(cfg)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=3)
    cfg.val_cfg = dict(fp61=True)
    with pytest.raises(TypeError, match=r"val_cfg \(ValLoop\) got unknown key\(s\) 'fp61' \(did you mean 'fp16'"):
        check_loop_keys(cfg)
    cfg.val_cfg = dict()
    check_config(cfg)  # valid: nothing raised
    cfg.model.lable_smoothing = 0.1
    with pytest.raises(TypeError, match=r"model \(ImageClassifier\).*'lable_smoothing' \(did you mean "
                                        r"'label_smoothing'\?\)"):
        check_model_keys(cfg)


def test_labels_beyond_the_head_name_num_classes_and_the_label_range():
    model = build_model(backbone=TINY)
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    batch = model.data_preprocessor({'inputs': images, 'data_samples': torch.tensor([2, 6])})
    with pytest.raises(ValueError, match=r'labels of this batch span 2..6 but the head has num_classes=5 outputs '
                                         r'\(labels 0..4\): set num_classes'):
        model(**batch, mode='loss')
    with pytest.raises(ValueError, match='span 2..6'):
        model(**batch, mode='predict')
    batch['data_samples'] = torch.tensor([0, 4])
    assert torch.isfinite(model(**batch, mode='loss')['loss'])


def test_a_head_without_a_size_says_how_to_set_it():
    with pytest.raises(ValueError, match=r'model.backbone.num_classes is None: .*--cfg-options num_classes=N'):
        ImageClassifier(backbone={**TINY, 'num_classes': None})
