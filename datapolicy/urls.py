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

urlpatterns += [
    path("policy/grants/", views.GrantListView.as_view(), name="dp_grants"),
    path("policy/grants/new/", views.GrantCreateView.as_view(), name="dp_grant_create"),
    path("policy/grants/<int:pk>/revoke/", views.GrantRevokeView.as_view(), name="dp_grant_revoke"),
    path("policy/consents/", views.ConsentListView.as_view(), name="dp_consents"),
    path(
        "policy/consents/<int:pk>/withdraw/",
        views.ConsentWithdrawView.as_view(),
        name="dp_consent_withdraw",
    ),
    path("policy/log/", views.AccessLogView.as_view(), name="dp_access_log"),
    path("policy/log/client.csv", views.AccessLogExportView.as_view(), name="dp_access_log_export"),
    path("policy/reports/", views.ReportListView.as_view(), name="dp_reports"),
    path("policy/reports/new/", views.ReportCreateView.as_view(), name="dp_report_create"),
    path("policy/reports/<int:pk>/", views.ReportDetailView.as_view(), name="dp_report"),
    path(
        "policy/reports/<int:pk>/approve/",
        views.ReportApproveView.as_view(),
        name="dp_report_approve",
    ),
    path(
        "policy/reports/<int:pk>/withdraw/",
        views.ReportWithdrawView.as_view(),
        name="dp_report_withdraw",
    ),
    path(
        "policy/reports/<int:pk>/export.xlsx",
        views.ReportExportView.as_view(),
        name="dp_report_export",
    ),
    path("policy/settings/", views.PolicySettingsView.as_view(), name="dp_settings"),
    path("policy/retention/run/", views.RetentionRunView.as_view(), name="dp_retention_run"),
    path("policy/memberships/", views.MembershipListView.as_view(), name="dp_memberships"),
    path(
        "policy/memberships/<int:pk>/active/",
        views.MembershipActiveView.as_view(),
        name="dp_membership_active",
    ),
    path("policy/memberships/import/", views.UserImportView.as_view(), name="dp_user_import"),
]
