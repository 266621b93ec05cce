_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='adaptformer')
suite = dict(method='adaptformer', dataset='digits (rotated, 20-shot)')
