_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='linear')
suite = dict(method='linear', dataset='digits (rotated, 20-shot)')
