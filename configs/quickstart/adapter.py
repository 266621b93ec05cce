_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='adapter')
suite = dict(method='adapter', dataset='digits (rotated, 20-shot)')
