from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organisation/", views.ChooseOrganisationView.as_view(), name="choose_organisation"),
    path("leader/", views.LeaderHomeView.as_view(), name="leader_home"),
    path("admin-home/", views.AdminHomeView.as_view(), name="admin_home"),
    path("operator/", views.OperatorHomeView.as_view(), name="operator_home"),
]
