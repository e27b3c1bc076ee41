# Student: Faster R-CNN R-18 with a 128-channel FPN trained from scratch on the synthetic
# benchmark, to the end of the students' schedule.
_base_ = ['./_base_/faster-rcnn_r18_fpn-128_scratch.py', './_base_/student_schedule.py']
