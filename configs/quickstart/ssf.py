_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='ssf')
suite = dict(method='ssf', dataset='digits (rotated, 20-shot)')
