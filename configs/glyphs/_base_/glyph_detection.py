# The glyph data set (ktan_det.datasets.glyphs): ten digit classes on printed pages, 80-pixel
# images; never used for any choice (docs/benchmarks.md#defaults-that-transfer). Evaluation and
# the teacher's schedule are the synthetic benchmark's.
_base_ = '../../synthetic/_base_/synthetic_detection.py'

dataset_type = 'SyntheticGlyphsDataset'
data_root = 'data/glyphs_v1/'
glyphs = dict(num_train=1000, num_val=300, num_test=600, seed=0, image_size=80)
image_size = (80, 80)
# No flip: a mirrored digit is no digit.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
glyph_dataset = dict(type=dataset_type, data_root=data_root,
                     generate=dict(glyphs, _delete_=True))
train_dataloader = dict(dataset=dict(glyph_dataset, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(glyph_dataset, pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(glyph_dataset, pipeline=test_pipeline))
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test.json')
