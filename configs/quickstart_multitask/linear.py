# Linear probes: the frozen backbone's features, one head per task.
_base_ = ['../_base_/quickstart_multitask.py']
model = dict(plan='linear', adapters='shared')
suite = dict(method='linear probes', dataset='digits multi-task (4 hard domains)')
