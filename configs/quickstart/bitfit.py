_base_ = ['../_base_/quickstart_digits.py']
model = dict(plan='bitfit')
suite = dict(method='bitfit', dataset='digits (rotated, 20-shot)')
