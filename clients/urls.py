from django.urls import path

from . import views

urlpatterns = [
    path("", views.CaseloadView.as_view(), name="caseload"),
]
