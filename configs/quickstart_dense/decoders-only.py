# only the four decoders train (the frozen backbone's features)
_base_ = ['../_base_/quickstart_dense.py']

model = dict(plan='linear')
suite = dict(method='decoders-only')
