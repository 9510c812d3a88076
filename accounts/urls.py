from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
