_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='lora')
suite = dict(method='lora', dataset='digits (rotated, 20-shot)')
