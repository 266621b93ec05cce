# BitFit: the backbone's biases, shared by the tasks
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan='bitfit')
suite = dict(method='bitfit')
