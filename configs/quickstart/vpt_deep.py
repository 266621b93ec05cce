_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='vpt_deep')
suite = dict(method='vpt_deep', dataset='digits (rotated, 20-shot)')
