"""The job layer every shell uses: conversion, f0, evaluation, training and tool jobs."""
